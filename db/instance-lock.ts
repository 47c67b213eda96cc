/**
 * One server per history file, whatever the path it is given. Client names are numbered from the history, so two
 * servers writing to one file would hand out the same names; the second one is refused at start instead.
 *
 * The lock is a file beside the history's real path (symbolic links resolved, of the file and of its folders), so
 * every path that leads to the file through links names the same lock. A hard link is another name for the file
 * that no resolution leads back to, and SQLite names its WAL after the path it is given: two servers on two hard
 * links would each write their own WAL and overwrite each other at checkpoint. A history with more than one link
 * is therefore refused (history-hard-linked), whoever opens it; this is taken before the history is opened, so
 * nothing is written to a file that is refused.
 *
 * The lock file holds the owner's pid and, where the system says it (Linux: /proc/<pid>/stat), the start time of
 * that process. A lock is stale, and taken over, when its process is gone, or when its pid now belongs to another
 * process (alive, but started at another time: pids are reused, by a restarted container most of all), or when that
 * process has exited and only its entry is left (a zombie, Linux: state Z in /proc/<pid>/stat, until its parent
 * reaps it: a server killed with kill -9 is one for a moment, longer when its parent is slow to reap).
 *
 * A running server checks, about once a second, that the lock it took is still there and still its own
 * (lockStillHeld): a lock removed or replaced under it means another server may start on the same history.
 */
import {
  linkSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import {
  HistoryDiskFullError,
  HistoryHardLinkedError,
  HistoryInUseError,
  HistoryIsAFolderError,
  HistoryReadOnlyError,
} from './errors.ts';

/** Lock files held by this process, each with the content it wrote. */
const heldHere = new Map<string, string>();

export interface InstanceLock {
  /** the lock file */
  readonly file: string;
  /** the history's real path, the one the lock is named after */
  readonly history: string;
  release(): void;
}

interface Owner {
  pid: number;
  /** the process's start time as the system gives it (clock ticks since boot on Linux); null when unknown */
  startTime: string | null;
}

/**
 * The fields of /proc/<pid>/stat from field 3 on, or null where there is no /proc or the process is gone. Field 2
 * (the command) may hold spaces and parentheses: fields are counted after the last ')'.
 */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The start time of a process, /proc/<pid>/stat field 22 (clock ticks since boot), or null when unknown. */
export function processStartTime(pid: number): string | null {
  const startTime = statFields(pid)?.[22 - 3];
  return startTime && /^\d+$/.test(startTime) ? startTime : null;
}

/** The state of a process, /proc/<pid>/stat field 3 (R, S, D; Z a zombie, X dead), or null when unknown. */
export function processState(pid: number): string | null {
  return statFields(pid)?.[0] || null;
}

/**
 * Whether the pid names a process that runs. One that has exited but is not reaped yet (a zombie: a server just
 * killed with kill -9, whose parent has not waited for it) still answers kill(pid, 0), yet holds nothing.
 */
function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = processState(pid);
  return state !== 'Z' && state !== 'X';
}

function parseOwner(content: string): Owner | null {
  const [pidText, startTime] = content.trim().split(/\s+/);
  const pid = Number.parseInt(pidText ?? '', 10);
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  return { pid, startTime: startTime && /^\d+$/.test(startTime) ? startTime : null };
}

function readLock(lockFile: string): string | null {
  try {
    return readFileSync(lockFile, 'utf8');
  } catch {
    return null;
  }
}

/** Whether the process that wrote the lock still runs: the same pid, and (when both are known) the same start. */
function ownerRuns(owner: Owner): boolean {
  if (!processIsAlive(owner.pid)) return false;
  if (owner.startTime === null) return true; // a lock written without a start time: cannot tell, assume it runs
  const now = processStartTime(owner.pid);
  return now === null || now === owner.startTime;
}

/**
 * The path SQLite will open, with every symbolic link resolved: of the file, of its folders, and of a link whose
 * target does not exist yet (SQLite creates the target). The folder is created if missing, as opening would.
 */
export function realHistoryPath(file: string): string {
  let current = path.resolve(file);
  for (let hops = 0; hops < 40; hops++) {
    try {
      return realpathSync(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    let target: string;
    try {
      target = readlinkSync(current);
    } catch {
      // Not a link: the file does not exist yet, and is created here.
      mkdirSync(path.dirname(current), { recursive: true });
      return path.join(realpathSync(path.dirname(current)), path.basename(current));
    }
    current = path.resolve(path.dirname(current), target);
  }
  throw Object.assign(new Error(`too many symbolic links: ${file}`), { code: 'ELOOP' });
}

/** Refuses a folder, and a history file that has other names (hard links): each would get its own WAL. */
function refuseHardLinks(historyFile: string, real: string): void {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(real);
  } catch {
    return; // not created yet
  }
  if (stats.isDirectory()) throw new HistoryIsAFolderError(historyFile);
  if (stats.nlink > 1) throw new HistoryHardLinkedError(historyFile, stats.nlink);
}

/**
 * Whether the lock file still holds what this process wrote when it took it: null if so, else what became of it
 * ('removed', or 'replaced' by another content).
 */
export function lockStillHeld(lockFile: string): 'removed' | 'replaced' | null {
  const mine = heldHere.get(lockFile);
  let found: string;
  try {
    found = readFileSync(lockFile, 'utf8');
  } catch (error) {
    // Only a path that leads nowhere is a lock removed; a read that fails otherwise (no file descriptor left under a
    // flood of connections, an I/O error) tells nothing about the lock: looked at again next time.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'removed';
    if (code === 'EISDIR') return 'replaced';
    return null;
  }
  return found === mine ? null : 'replaced';
}

export function lockHistory(historyFile: string): InstanceLock {
  let real: string;
  try {
    real = realHistoryPath(historyFile);
  } catch (error) {
    throw lockFileError(historyFile, error);
  }
  refuseHardLinks(historyFile, real);
  const file = `${real}.lock`;
  const startTime = processStartTime(process.pid);
  const content = startTime === null ? `${process.pid}\n` : `${process.pid} ${startTime}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createExclusively(historyFile, file, content)) {
      heldHere.set(file, content);
      return {
        file,
        history: real,
        release: () => {
          if (heldHere.get(file) !== content) return;
          heldHere.delete(file);
          // Only our own lock: if it was taken over meanwhile (it should not be), the new owner's stays.
          if (readLock(file) === content) rmSync(file, { force: true });
        },
      };
    }
    const found = readLock(file);
    if (found === null) continue; // released meanwhile: try again
    const owner = parseOwner(found);
    const ours = owner?.pid === process.pid && heldHere.get(file) === found;
    if (ours || (owner !== null && owner.pid !== process.pid && ownerRuns(owner))) {
      throw new HistoryInUseError(historyFile, owner?.pid ?? null);
    }
    // Left by a server that is gone, or by a pid that now names another process: taken over.
    removeStale(historyFile, file, found, content);
  }
  throw new HistoryInUseError(historyFile, parseOwner(readLock(file) ?? '')?.pid ?? null);
}

/**
 * Removes a stale lock, and only that one: another server starting at the same moment may have taken it over and
 * made a lock of its own already. Taking over is itself guarded by a second lock file (`<lock>.takeover`, created
 * the same exclusive way): only its holder looks at the lock again and removes it if it is still the stale one, so
 * two servers can never each remove what the other just made. One that finds the guard held returns, and its caller
 * tries again. The guard holds the same owner line as a lock (pid and start time), so a guard left by a process that
 * died while holding it (a moment's window) is cleared as a stale lock is.
 */
function removeStale(historyFile: string, file: string, stale: string, mine: string): void {
  const guard = `${file}.takeover`;
  if (!createExclusively(historyFile, guard, mine)) {
    const holder = readLock(guard);
    const owner = holder === null ? null : parseOwner(holder);
    if (holder !== null && (owner === null || !ownerRuns(owner)) && readLock(guard) === holder) {
      rmSync(guard, { force: true });
    }
    return;
  }
  try {
    if (readLock(file) === stale) rmSync(file, { force: true });
  } finally {
    if (readLock(guard) === mine) rmSync(guard, { force: true });
  }
}

/**
 * Creates the lock file with its content in one step: written to a file of its own, then linked to the lock's
 * name, which fails if the name exists. Nobody ever sees a lock file without its pid.
 */
function createExclusively(historyFile: string, file: string, content: string): boolean {
  const draft = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(draft, content, { flag: 'wx' });
    linkSync(draft, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw lockFileError(historyFile, error);
  } finally {
    rmSync(draft, { force: true });
  }
}

/** A lock file that cannot be written: the history's folder is read-only, or the disk is full. */
function lockFileError(historyFile: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return new HistoryReadOnlyError(historyFile, error);
  if (code === 'ENOSPC') return new HistoryDiskFullError(historyFile, error);
  return error;
}
