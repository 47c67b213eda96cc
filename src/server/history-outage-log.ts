/**
 * The operator's log of a history outage: said once when it begins (with the whole error), repeated at a bounded
 * rate while it lasts (one short line per `repeatMs` at most, with the count of failed commits since the last
 * line), and said again when it is over ("history recovered", with its duration and the facts committed late). A
 * full disk fails every commit at once, hundreds a second: one line each would fill the log, and the disk, faster.
 */
import type { HistoryHealth } from '../../db/event-log.ts';
import type { Logger } from '../logger.ts';

/** At most one "still unavailable" line per this many milliseconds during an outage. */
export const OUTAGE_REPEAT_MS = 10_000;

export const OUTAGE_BEGAN = 'history unavailable: answers that need it are refused, facts are kept until it is back';
export const OUTAGE_GOES_ON = 'history still unavailable';
export const OUTAGE_ENDED = 'history recovered';

export interface OutageLogOptions {
  /** default OUTAGE_REPEAT_MS */
  repeatMs?: number;
  /** a monotonic clock in milliseconds (default performance.now) */
  now?: () => number;
}

/** Returns the listener to give the event log (EventLogOptions.onHealth). */
export function historyOutageLog(logger: Logger, options: OutageLogOptions = {}): (health: HistoryHealth) => void {
  const repeatMs = options.repeatMs ?? OUTAGE_REPEAT_MS;
  const now = options.now ?? (() => performance.now());
  let lastLine: number | null = null;
  let failuresSinceLine = 0;
  return (health) => {
    if (health.kind === 'recovered') {
      const { outageMs, failures, lateFacts, lostFacts } = health;
      logger.warn({ outageMs, failures, lateFacts, lostFacts }, OUTAGE_ENDED);
      lastLine = null;
      failuresSinceLine = 0;
      return;
    }
    const { error, failures, heldFacts, lostFacts } = health;
    if (lastLine === null) {
      logger.error({ err: error, heldFacts }, OUTAGE_BEGAN);
      lastLine = now();
      failuresSinceLine = 0;
      return;
    }
    failuresSinceLine++;
    if (now() - lastLine < repeatMs) return;
    logger.error(
      {
        code: error.code,
        condition: error.condition,
        sqliteCode: error.sqliteCode,
        failures: failuresSinceLine,
        failuresInAll: failures,
        heldFacts,
        lostFacts,
      },
      OUTAGE_GOES_ON,
    );
    lastLine = now();
    failuresSinceLine = 0;
  };
}
