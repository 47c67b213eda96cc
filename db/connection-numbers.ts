/**
 * Connection numbers. The server numbers each TCP connection from a counter started at `nextConnectionNumber`, and
 * derives the client's name from it (`client-<n>`); since the history survives restarts, so does the uniqueness.
 */

import type BetterSqlite3 from 'better-sqlite3';

type Database = BetterSqlite3.Database;

/**
 * 1 + the largest connection number any event of the history names; 1 on an empty history.
 *
 * Kept cheap at start-up: the kinds of events that open or end a connection each have their own partial index
 * (four index lookups); the last `server-started` says from which number its run numbered (`nextConnection`), and
 * any other event naming a number is found by scanning the rows since that start, from the end. That covers every
 * number: each run numbers from above every number named before it started.
 */
export function nextConnectionNumber(db: Database): number {
  const indexed = db
    .prepare<[], number | null>(
      `SELECT max(
         (SELECT coalesce(max(session), 0) FROM event_rows WHERE type = 'session-admitted'),
         (SELECT coalesce(max(session), 0) FROM event_rows WHERE type = 'session-closed'),
         (SELECT coalesce(max(session), 0) FROM event_rows WHERE type = 'connection-rejected'),
         (SELECT coalesce(max(session), 0) FROM event_rows WHERE type = 'connection-dropped'))`,
    )
    .pluck()
    .get();
  const lastStart = db
    .prepare<[], { position: number; next: number | null }>(
      `SELECT position, json_extract(data, '$.nextConnection') AS next FROM event_rows
       WHERE type = 'server-started' ORDER BY position DESC LIMIT 1`,
    )
    .get();
  const sinceStart = db
    .prepare<[number], number | null>('SELECT coalesce(max(session), 0) FROM event_rows WHERE position > ?')
    .pluck()
    .get(lastStart?.position ?? 0);
  const before = typeof lastStart?.next === 'number' ? lastStart.next - 1 : 0;
  return Math.max(indexed ?? 0, sinceStart ?? 0, before) + 1;
}
