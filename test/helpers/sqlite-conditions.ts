/**
 * Real conditions that stop SQLite from writing, for the tests of how the server reports them: another process
 * holding the write lock, a small file system that fills up, a file system remounted read-only, an immutable file.
 * Mounting needs root (CAP_SYS_ADMIN) and `chattr` a file system with attributes: each probe says why it cannot
 * run, so a test can be skipped with the reason instead of failing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PACKAGE_ROOT } from '../../src/config.ts';
import { cleanUpOnExit } from './cleanup-on-exit.ts';
import { makeTemporaryFolder } from './test-server.ts';

/** A separate process holding the write lock of an SQLite file until released. */
export interface LockHolder {
  release(): Promise<void>;
}

const HOLD_LOCK = `
import Database from 'better-sqlite3';
import { createInterface } from 'node:readline';
const db = new Database(process.argv[1], { timeout: 0 });
db.exec('BEGIN IMMEDIATE');
process.stdout.write('locked\\n');
createInterface({ input: process.stdin }).on('close', () => { db.exec('ROLLBACK'); db.close(); });
`;

/** Starts a process that takes the write lock of `file` (BEGIN IMMEDIATE) and resolves once it holds it. */
export async function holdWriteLock(file: string): Promise<LockHolder> {
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', HOLD_LOCK, file], {
    cwd: PACKAGE_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line === 'locked') resolve();
    });
    exited.then(([code]) => reject(new Error(`the lock holder exited with ${code} before locking`)));
  });
  return {
    release: async () => {
      child.stdin?.end();
      await exited;
    },
  };
}

/** A tmpfs of a few hundred KiB of our own: it fills up for real, and can be remounted read-only. */
export interface SmallFileSystem {
  folder: string;
  /** Takes every free block with a filler file, as another process filling the disk would. */
  fill(): void;
  /** Deletes the filler file. */
  free(): void;
  remountReadOnly(): void;
  remountReadWrite(): void;
  unmount(): void;
}

const FILLER = 'filler.bin';

/** Mounts a tmpfs of `kib` KiB in a fresh temporary folder, or says why it cannot. */
export function mountSmallFileSystem(kib: number): SmallFileSystem | { refused: string } {
  const folder = makeTemporaryFolder('imgcache-small-fs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0755`, 'tmpfs', folder], { stdio: 'pipe' });
  } catch (error) {
    rmSync(folder, { recursive: true, force: true });
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    return { refused: `cannot mount a tmpfs (root is needed): ${stderr || (error as Error).message}` };
  }
  const remount = (mode: 'ro' | 'rw') => execFileSync('mount', ['-o', `remount,${mode}`, folder], { stdio: 'pipe' });
  // A test interrupted before it unmounts must not leave the mount behind: lazily detached, then the folder removed.
  const forget = cleanUpOnExit(() => {
    execFileSync('umount', ['-l', folder], { stdio: 'pipe', timeout: 5_000 });
    rmSync(folder, { recursive: true, force: true });
  });
  return {
    folder,
    fill: () => fillUp(path.join(folder, FILLER)),
    free: () => rmSync(path.join(folder, FILLER), { force: true }),
    remountReadOnly: () => remount('ro'),
    remountReadWrite: () => remount('rw'),
    unmount: () => {
      execFileSync('umount', [folder], { stdio: 'pipe' });
      forget();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** Writes until the file system says ENOSPC, in smaller and smaller pieces, so that not one block is left. */
function fillUp(file: string): void {
  const fd = openSync(file, 'a');
  try {
    for (const size of [65_536, 4_096, 1]) {
      const piece = Buffer.alloc(size, 0x55);
      for (;;) {
        try {
          writeSync(fd, piece);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Sets or clears the immutable attribute (`chattr +i`): not even root may write the file. */
export function setImmutable(file: string, immutable: boolean): void {
  execFileSync('chattr', [immutable ? '+i' : '-i', file], { stdio: 'pipe' });
}

/** Whether `chattr +i` works in a fresh temporary folder; otherwise why not. */
export function probeImmutable(): true | { refused: string } {
  const folder = makeTemporaryFolder('imgcache-chattr-');
  const file = path.join(folder, 'probe');
  try {
    writeFileSync(file, 'probe');
    setImmutable(file, true);
    setImmutable(file, false);
    return true;
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    return { refused: `cannot set the immutable attribute: ${stderr || (error as Error).message}` };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
