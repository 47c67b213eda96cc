/**
 * What a test started must not outlive the test process, however it ends. The helpers that start processes
 * (PostgreSQL, HAProxy, cluster nodes) or mount file systems register here a synchronous cleanup for each: kill it
 * or unmount it, remove its folder.
 * The cleanups run, last registered first, when the process ends:
 *
 * - on the `exit` event: a normal end, `process.exit()`, and an uncaught exception or unhandled rejection that ends
 *   the process (Node emits `exit` with status 1 then);
 * - on SIGINT, SIGTERM or SIGHUP (Ctrl-C, a kill, a closed terminal), which by default end a process without an
 *   `exit` event: then the process exits with 128 + the signal's number (130, 143, 129), so that whoever sent it
 *   still sees an interruption.
 *
 * A cleanup must not wait on the event loop (it will not turn again): kill with SIGKILL, run a bounded
 * `execFileSync`, remove with `rmSync`. Each runs at most once, and one that throws does not stop the others.
 */
import os from 'node:os';

type Cleanup = () => void;

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const cleanups: Cleanup[] = [];
let installed = false;

/**
 * Registers `cleanup` to run when the process ends. Returns a function that takes it off the list, for when the
 * normal path has stopped what it cleans up.
 */
export function cleanUpOnExit(cleanup: Cleanup): () => void {
  install();
  cleanups.push(cleanup);
  return () => {
    const index = cleanups.indexOf(cleanup);
    if (index >= 0) cleanups.splice(index, 1);
  };
}

/** Runs every registered cleanup now, last registered first, and forgets them. */
function runCleanups(): void {
  for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) {
    try {
      cleanup();
    } catch {
      // the others still run: a process gone already, a folder removed already
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runCleanups);
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      runCleanups();
      process.exit(128 + os.constants.signals[signal]);
    });
  }
}
