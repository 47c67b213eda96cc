/**
 * One server per history file. Client names are numbered from the history, so two servers writing to one file would
 * hand out the same names; the second one is refused at start instead. The lock is a file beside the history holding
 * the owner's pid, created exclusively; a lock whose process is gone (a server that was killed) is taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { HistoryInUseError } from './errors.ts';

/** Histories locked by this process: a lock file naming our own pid is ours only if it is in here (a restarted
 * container can give the new server the pid of the killed one). */
const heldHere = new Set<string>();

export interface InstanceLock {
  readonly file: string;
  release(): void;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ownerOf(lockFile: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function lockHistory(historyFile: string): InstanceLock {
  const file = `${historyFile}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      heldHere.add(file);
      return {
        file,
        release: () => {
          heldHere.delete(file);
          rmSync(file, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = ownerOf(file);
      const held = owner === process.pid ? heldHere.has(file) : owner !== null && processIsAlive(owner);
      if (held) {
        throw new HistoryInUseError(historyFile, owner);
      }
      rmSync(file, { force: true }); // left by a server that is gone
    }
  }
  throw new HistoryInUseError(historyFile, ownerOf(file));
}
