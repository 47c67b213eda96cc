/**
 * What the file system says about the history's file when SQLite fails with a bare I/O error: SQLite reports a
 * full disk as SQLITE_FULL only when a write itself fails (growing its shared-memory file gives SQLITE_IOERR_SHMSIZE),
 * and a file made read-only or immutable under an open connection as SQLITE_IOERR_WRITE. Asking tells them apart.
 */
import { accessSync, constants, existsSync, statfsSync } from 'node:fs';
import path from 'node:path';

/**
 * Why the process may not write the history `file`, its WAL files or its folder (EROFS: read-only file system;
 * EPERM: immutable file; EACCES: permissions), or null when it may.
 */
export function writeDenied(file: string): NodeJS.ErrnoException | null {
  const resolved = path.resolve(file);
  for (const candidate of [resolved, `${resolved}-wal`, `${resolved}-shm`, path.dirname(resolved)]) {
    if (!existsSync(candidate)) continue;
    try {
      accessSync(candidate, constants.W_OK);
    } catch (error) {
      return error as NodeJS.ErrnoException;
    }
  }
  return null;
}

/** True when the file system holding `file` has no block left for an unprivileged write; false when unknown. */
export function diskIsFull(file: string): boolean {
  try {
    return statfsSync(path.dirname(path.resolve(file))).bavail === 0;
  } catch {
    return false;
  }
}
