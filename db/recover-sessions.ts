/**
 * Start-up recovery: a session admitted but never closed belonged to a server that crashed or was killed. Closing it
 * in the history keeps the usage document truthful (its client is not connected any more).
 */

import type BetterSqlite3 from 'better-sqlite3';
import { EventLog } from './event-log.ts';

type Database = BetterSqlite3.Database;

/**
 * Records a `session-closed` for every orphaned session, in one synchronous commit; returns how many there were.
 * Given a database rather than the server's log, it appends through a log of its own on that connection.
 */
export function closeOrphanedSessions(target: EventLog | Database, reason = 'server-restart'): number {
  const log = target instanceof EventLog ? target : new EventLog(target);
  const sessions = orphanedSessions(log.db);
  if (sessions.length > 0) {
    log.recordNow(sessions.map((session) => ({ type: 'session-closed', session, data: { reason } })));
  }
  return sessions.length;
}

/** Sessions admitted and not closed, by number: two range scans of the (type, position) index, no full scan. */
export function orphanedSessions(db: Database): number[] {
  return db
    .prepare<[], number>(
      `SELECT session FROM event_rows WHERE type = 'session-admitted' AND session IS NOT NULL
       EXCEPT
       SELECT session FROM event_rows WHERE type = 'session-closed'
       ORDER BY session`,
    )
    .pluck()
    .all();
}
