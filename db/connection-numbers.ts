/**
 * Connection numbers. The server numbers each TCP connection from a counter started at `nextConnectionNumber`, and
 * derives the client's name from it (`client-<n>`); since the history survives restarts, so does the uniqueness.
 */

import type BetterSqlite3 from 'better-sqlite3';

type Database = BetterSqlite3.Database;

/** 1 + the largest session number ever stored; 1 on an empty history. One index lookup, not a scan. */
export function nextConnectionNumber(db: Database): number {
  const largest = db.prepare<[], number | null>('SELECT max(session) FROM events').pluck().get();
  return (largest ?? 0) + 1;
}
