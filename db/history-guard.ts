/**
 * A running server's history must stay where it was opened. A history file deleted (or replaced) while the server
 * runs is lost silently: SQLite keeps writing to the unlinked file, and a second server can start on the path and
 * hand out the same client names. So, as PostgreSQL does with its lock file, the server looks about once a second:
 * the history's path must still lead to the file it opened (the same device and inode), and the instance lock must
 * still be its own. When either is not, it is told once, and stops (src/server/server.ts).
 */
import { statSync } from 'node:fs';
import { HistoryLostError } from './errors.ts';
import { lockStillHeld } from './instance-lock.ts';

/** How often the history's path and lock are looked at, in milliseconds. */
export const HISTORY_CHECK_MS = 1_000;

export interface HistoryGuard {
  /** what is wrong now, or null when the path still leads to the open history and the lock is ours */
  check(): HistoryLostError | null;
  /** looks every `everyMs` from now on; `onLost` is called once, with what happened */
  start(onLost: (error: HistoryLostError) => void, everyMs?: number): void;
  stop(): void;
}

/**
 * Guards `file` (as given: the path the server was started with) and its lock file, from the file as it is now:
 * make it right after the history is opened (it throws if the file is not there), start it once the server serves.
 */
export function guardHistory(file: string, lockFile: string): HistoryGuard {
  const opened = statSync(file);
  const check = (): HistoryLostError | null => {
    let now: ReturnType<typeof statSync>;
    try {
      now = statSync(file);
    } catch (error) {
      // Only a path that leads nowhere is a history deleted. A stat that fails otherwise (EMFILE: every file
      // descriptor taken by a flood of connections; an I/O error) tells nothing: looked at again next time.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return null;
      return new HistoryLostError(file, `the file was deleted (${code})`);
    }
    if (now.dev !== opened.dev || now.ino !== opened.ino) {
      return new HistoryLostError(file, 'the file was replaced by another one (another device or inode)');
    }
    const lock = lockStillHeld(lockFile);
    if (lock === 'removed') return new HistoryLostError(file, `its instance lock ${lockFile} was deleted`);
    if (lock === 'replaced') {
      return new HistoryLostError(file, `its instance lock ${lockFile} was replaced (another server's?)`);
    }
    return null;
  };
  let timer: NodeJS.Timeout | undefined;
  const stop = () => clearInterval(timer);
  const start = (onLost: (error: HistoryLostError) => void, everyMs = HISTORY_CHECK_MS) => {
    stop();
    timer = setInterval(() => {
      const lost = check();
      if (!lost) return;
      stop();
      onLost(lost);
    }, everyMs);
    timer.unref();
  };
  return { check, start, stop };
}
