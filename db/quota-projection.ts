/** The quota state of a session, rebuilt from the history: each `image-served` event spends one request. */

import type BetterSqlite3 from 'better-sqlite3';

type Database = BetterSqlite3.Database;

export function quotaUsed(db: Database, session: number): number {
  return (
    db
      .prepare<[number], number>("SELECT count(*) FROM events WHERE session = ? AND type = 'image-served'")
      .pluck()
      .get(session) ?? 0
  );
}
