/**
 * The schema of the history as an ordered list of migrations. `PRAGMA user_version` holds the number of migrations
 * applied; a writable open applies the missing ones, each in its own transaction.
 */

import type BetterSqlite3 from 'better-sqlite3';
import { HistoryOutdatedError, HistoryTooNewError } from './errors.ts';

type Database = BetterSqlite3.Database;

/** Migration n (1-based) is `MIGRATIONS[n - 1]`. Append only: never edit one that has shipped. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,      -- milliseconds since the epoch
    session INTEGER,          -- the connection number, null for server-wide events
    type TEXT NOT NULL,
    data TEXT NOT NULL        -- JSON
  );
  CREATE INDEX events_by_session ON events (session, position);
  CREATE INDEX events_by_type ON events (type, position);
  `,
  // Serving an image appends one row. Under version 1 that row also went into two indexes, and the (session,
  // position) one put the rows of concurrent sessions on as many different pages, all written to the WAL at each
  // commit; AUTOINCREMENT rewrote sqlite_sequence at every insert too. Now the indexes hold only the rows looked up
  // by kind, the few that open or end a connection, and positions are plain rowids: rows are never deleted, so the
  // next one is always max + 1, never a reused number. The usage export sorts by session (db/usage-export.ts).
  `
  CREATE TABLE events_v2 (
    position INTEGER PRIMARY KEY, -- the order of the history: 1, 2, 3, ... (rows are never deleted)
    at INTEGER NOT NULL,
    session INTEGER,
    type TEXT NOT NULL,
    data TEXT NOT NULL
  );
  INSERT INTO events_v2 (position, at, session, type, data) SELECT position, at, session, type, data FROM events;
  DROP TABLE events;
  ALTER TABLE events_v2 RENAME TO events;
  CREATE INDEX events_admitted ON events (session) WHERE type = 'session-admitted';
  CREATE INDEX events_closed ON events (session) WHERE type = 'session-closed';
  CREATE INDEX events_rejected ON events (session) WHERE type = 'connection-rejected';
  CREATE INDEX events_dropped ON events (session) WHERE type = 'connection-dropped';
  `,
  // [P-60] The registry of client identities is a projection of its events; a running server looks for new ones
  // every few hundred milliseconds (a revocation reaches it within a second). This index holds only those rows, so
  // each look is one probe of a small B-tree, however long the history.
  `
  CREATE INDEX events_registry ON events (position)
    WHERE type IN ('client-registered', 'client-key-rotated', 'client-tier-changed', 'client-revoked');
  `,
  // Every insert evaluates the WHERE of each partial index. SQLite evaluates an IN list of more than two constants by
  // building a temporary B-tree of them, once per statement run: for version 3's registry index that was every row
  // appended, about 1.4 µs of the 3.5 µs a row cost (64 rows per commit, synchronous=NORMAL). A range of the type's
  // prefix is two string comparisons and holds the same rows (all four registry types, and only they, begin with
  // 'client-'; '.' is the character after '-'). A query uses the index when its WHERE repeats these two terms
  // (db/registry-store.ts).
  `
  DROP INDEX events_registry;
  CREATE INDEX events_registry ON events (position) WHERE type > 'client-' AND type < 'client.';
  `,
  // An image served is nearly every row, and its JSON (about 175 bytes, mostly the image's name and SHA-256, the same
  // for every get of it) was most of what each commit wrote. Each image version (name, size, hash) is now written
  // once, in image_versions; the row of a get names it in image_version and keeps `[requestId, quotaUsed,
  // quotaLimit]` in data (db/image-versions.ts). The rows live in event_rows; `events` is a view of them with the same
  // columns and the same JSON text as before, for `sqlite3` and other readers. Rows written before keep their JSON
  // and no version: the view passes them through. Indexes keep their names; renaming the table rewrites nothing.
  `
  CREATE TABLE image_versions (
    version INTEGER PRIMARY KEY,
    image TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    UNIQUE (image, bytes, sha256)
  );
  ALTER TABLE events RENAME TO event_rows;
  ALTER TABLE event_rows ADD COLUMN image_version INTEGER; -- image_versions.version (not declared: no check per row)
  CREATE VIEW events (position, at, session, type, data) AS
    SELECT e.position, e.at, e.session, e.type,
      CASE WHEN e.image_version IS NULL THEN e.data ELSE json_object(
        'requestId', json_extract(e.data, '$[0]'), 'image', v.image, 'bytes', v.bytes, 'sha256', v.sha256,
        'quotaUsed', json_extract(e.data, '$[1]'), 'quotaLimit', json_extract(e.data, '$[2]')) END
    FROM event_rows e LEFT JOIN image_versions v ON v.version = e.image_version;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Brings a writable history up to `SCHEMA_VERSION`; returns how many migrations ran. */
export function migrate(db: Database, file: string): number {
  refuseNewerSchema(db, file);
  let applied = 0;
  for (let version = schemaVersion(db) + 1; version <= SCHEMA_VERSION; version++) {
    if (applyMigration(db, version)) applied++;
  }
  return applied;
}

/** A read-only connection cannot migrate, so it accepts only a history at exactly the code's version. */
export function checkSchemaVersion(db: Database, file: string): void {
  refuseNewerSchema(db, file);
  const version = schemaVersion(db);
  if (version < SCHEMA_VERSION) throw new HistoryOutdatedError(file, version, SCHEMA_VERSION);
}

export function refuseNewerSchema(db: Database, file: string): void {
  const version = schemaVersion(db);
  if (version > SCHEMA_VERSION) throw new HistoryTooNewError(file, version, SCHEMA_VERSION);
}

function applyMigration(db: Database, version: number): boolean {
  const run = db.transaction(() => {
    // Re-read under the write lock: another process may have migrated since we looked.
    if (schemaVersion(db) >= version) return false;
    db.exec(MIGRATIONS[version - 1] ?? '');
    db.pragma(`user_version = ${version}`);
    return true;
  });
  return run.immediate();
}
