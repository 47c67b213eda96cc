/**
 * The operator's log of a problem that repeats while it lasts (PostgreSQL out of reach for a node's heartbeat, its
 * slot releases and its registry listener; the registry of clients unreadable), as the history's outage is logged
 * (src/server/history-outage-log.ts): said once when it begins, with the whole error; repeated while it lasts at most
 * once per `repeatMs`, in a short line (no stack) with the failures since the last line, by what failed; and said
 * when it is over, with its duration and its failures in all. An idle node during an outage of PostgreSQL fails a
 * heartbeat every second and a registry read every 250 ms: one line each, with a stack, was six lines a second.
 */
import type { Logger } from '../logger.ts';

/** At most one "still" line per this many milliseconds while a problem lasts (as OUTAGE_REPEAT_MS). */
export const PROBLEM_REPEAT_MS = 10_000;

export interface ProblemLines {
  /** the first failure: logged with its error */
  began: string;
  /** while it lasts: a short line with the counts */
  goesOn: string;
  /** the first success after failures */
  ended: string;
}

/** The lines of a node that cannot reach its cluster's history (heartbeat, slot release, registry listener, ...). */
export const CLUSTER_PROBLEM: ProblemLines = {
  began: 'cluster: cannot reach the history; trying again',
  goesOn: 'cluster: still cannot reach the history',
  ended: 'cluster: the history is reachable again',
};

/** The lines of a server that cannot read the registry of clients (it looks again every 250 ms). */
export const REGISTRY_PROBLEM: ProblemLines = {
  began: 'cannot read the registry of clients; trying again',
  goesOn: 'still cannot read the registry of clients',
  ended: 'the registry of clients is read again',
};

export interface ProblemLogOptions {
  /** default PROBLEM_REPEAT_MS */
  repeatMs?: number;
  /** a monotonic clock in milliseconds (default performance.now) */
  now?: () => number;
}

export interface ProblemLog {
  /** one failure; `what` says of what (heartbeat, slot release, ...) */
  failed(error: Error, what?: string): void;
  /** a success: the problem, if there was one, is over */
  succeeded(): void;
}

export function problemLog(logger: Logger, lines: ProblemLines, options: ProblemLogOptions = {}): ProblemLog {
  const repeatMs = options.repeatMs ?? PROBLEM_REPEAT_MS;
  const now = options.now ?? (() => performance.now());
  /** when the problem began, null while there is none */
  let since: number | null = null;
  let lastLine = 0;
  let failures = 0;
  /** failures since the last line, by what failed */
  let sinceLine = new Map<string, number>();
  return {
    failed(error, what = 'history') {
      failures++;
      if (since === null) {
        since = now();
        lastLine = since;
        logger.warn({ err: error, what }, lines.began);
        return;
      }
      sinceLine.set(what, (sinceLine.get(what) ?? 0) + 1);
      if (now() - lastLine < repeatMs) return;
      const { code } = error as { code?: unknown };
      logger.warn(
        { failures: Object.fromEntries(sinceLine), error: error.message, ...(code === undefined ? {} : { code }) },
        lines.goesOn,
      );
      lastLine = now();
      sinceLine = new Map();
    },
    succeeded() {
      if (since === null) return;
      logger.warn({ outageMs: Math.round(now() - since), failures }, lines.ended);
      since = null;
      failures = 0;
      sinceLine = new Map();
    },
  };
}
