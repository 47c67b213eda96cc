/**
 * The usage document straight from the database: two streaming queries fed to the pure projection. Give it its own
 * (read-only) connection: an iteration in progress keeps its connection busy, and a separate connection reads a WAL
 * snapshot, so a long export never blocks appends.
 */

import type BetterSqlite3 from 'better-sqlite3';
import type { StoredEvent } from './events.ts';
import { EVENT_COLUMNS, type EventRow, toStoredEvent } from './read-events.ts';
import { usageJsonChunks } from './usage-projection.ts';

type Database = BetterSqlite3.Database;

export interface UsageExportOptions {
  /** the document's `generatedAt`, in milliseconds since the epoch (default Date.now()) */
  generatedAt?: number;
}

export function usageJsonChunksFromDatabase(
  db: Database,
  options: UsageExportOptions = {},
): Generator<string, void, undefined> {
  const generatedAt = options.generatedAt ?? Date.now();
  // Both queries stop at the same position, so the two lists describe one moment even though they are read one after
  // the other (each in its own snapshot).
  const upTo = lastPosition(db);
  return usageJsonChunks({
    sessions: lazily(() => sessionEvents(db, upTo)),
    rejected: lazily(() => rejectedEvents(db, upTo)),
    generatedAt,
  });
}

/** The position of the newest event, 0 in an empty history; positions are never reused, so it counts the events. */
export function lastPosition(db: Database): number {
  return db.prepare<[], number>('SELECT coalesce(max(position), 0) FROM events').pluck().get() ?? 0;
}

/**
 * Every event of a numbered connection but its rejection, grouped by connection number, each connection's events in
 * position order. The history keeps no index by session (each image served would have to be written into it), so
 * SQLite sorts: its sorter spills to temporary files past its cache, which keeps memory flat for any history size.
 * Connections never admitted (dropped before their HELLO) come through too; the projection leaves them out.
 */
function* sessionEvents(db: Database, upTo: number): Generator<StoredEvent, void, undefined> {
  const statement = db
    .prepare<[{ upTo: number }], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events
     WHERE session IS NOT NULL AND type <> 'connection-rejected' AND position <= @upTo
     ORDER BY session, position`,
    )
    .raw();
  for (const row of statement.iterate({ upTo })) yield toStoredEvent(row);
}

/** The rejections in the order of their connection numbers, read through their partial index: no sort, no scan. */
function* rejectedEvents(db: Database, upTo: number): Generator<StoredEvent, void, undefined> {
  const statement = db
    .prepare<[{ upTo: number }], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events
     WHERE type = 'connection-rejected' AND position <= @upTo
     ORDER BY session`,
    )
    .raw();
  for (const row of statement.iterate({ upTo })) yield toStoredEvent(row);
}

/** Nothing is queried until the projection reaches this list. */
function lazily<T>(open: () => Iterator<T>): Iterable<T> {
  return { [Symbol.iterator]: open };
}
