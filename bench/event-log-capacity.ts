/**
 * What the event log can absorb on its own, in this process: `callers` records of one `image-served` event each per
 * event-loop turn (as `callers` busy sessions would make), each waiting for its commit, turn after turn, for a fixed
 * time. With group commit every turn is one transaction (one fsync under `synchronous = FULL`), so the rate grows with
 * the callers per turn. Compare with the events/s a serving run sustains to see whether the log is the bottleneck.
 */
import { performance } from 'node:perf_hooks';
import { EventLog } from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { openDatabase } from '../db/open-database.ts';
import { resolveConfig } from '../src/config.ts';

export interface EventLogCapacity {
  /** records per event-loop turn */
  callers: number;
  eventsPerSecond: number;
  /** transactions (turns) per second */
  commitsPerSecond: number;
  seconds: number;
}

const MAX_TURNS = 10_000_000;

export async function measureEventLogCapacity(
  file: string,
  callers: number,
  durationMs: number,
): Promise<EventLogCapacity> {
  // Synced as the server would be: its default (normal), or IMGCACHE_HISTORY_SYNC, as the baseline + history is.
  const db = openDatabase(file, { synchronous: resolveConfig({}, process.env).historySync });
  const log = new EventLog(db);
  try {
    return await measureEventLogTurns(log, callers, durationMs);
  } finally {
    log.close();
    db.close();
  }
}

/** The measurement itself, on any event log (SQLite's, or one with a background committer such as PostgreSQL's). */
export async function measureEventLogTurns(
  log: EventLog,
  callers: number,
  durationMs: number,
): Promise<EventLogCapacity> {
  const event: NewEvent = {
    session: 1,
    type: 'image-served',
    data: { requestId: 1, image: 'bench-4096.png', bytes: 4096, sha256: 'ab'.repeat(32), quotaUsed: 1, quotaLimit: 20 },
  };
  const startedAt = performance.now();
  let turns = 0;
  while (performance.now() - startedAt < durationMs && turns < MAX_TURNS) {
    await new Promise<void>((resolve, reject) => {
      let waiting = callers;
      for (let caller = 0; caller < callers; caller++) {
        log.record([event], (error) => {
          if (error) reject(error);
          else if (--waiting === 0) resolve();
        });
      }
    });
    turns++;
  }
  const seconds = (performance.now() - startedAt) / 1000;
  return { callers, eventsPerSecond: (turns * callers) / seconds, commitsPerSecond: turns / seconds, seconds };
}
