/**
 * Connection numbers. The server numbers each TCP connection from a counter started at `nextConnectionNumber`, and
 * derives the client's name from it (`client-<n>`); since the history survives restarts, so does the uniqueness.
 */

import type BetterSqlite3 from 'better-sqlite3';

type Database = BetterSqlite3.Database;

/**
 * 1 + the largest connection number ever stored; 1 on an empty history. Every numbered connection that reached the
 * history has exactly one of these three first events, each kind with its own partial index, so this is three index
 * lookups, not a scan.
 */
export function nextConnectionNumber(db: Database): number {
  const largest = db
    .prepare<[], number | null>(
      `SELECT max(
         (SELECT coalesce(max(session), 0) FROM events WHERE type = 'session-admitted'),
         (SELECT coalesce(max(session), 0) FROM events WHERE type = 'connection-rejected'),
         (SELECT coalesce(max(session), 0) FROM events WHERE type = 'connection-dropped'))`,
    )
    .pluck()
    .get();
  return (largest ?? 0) + 1;
}
