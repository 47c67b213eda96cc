/**
 * The usage document straight from the database: two streaming queries fed to the pure projection. Give it its own
 * (read-only) connection: an iteration in progress keeps its connection busy, and a separate connection reads a WAL
 * snapshot, so a long export never blocks appends. The server runs it on a thread of its own (usage-worker.ts).
 *
 * [P-46] A filtered export reads only the part of the history it needs, found through the indexes of admissions
 * and closes: one client's events lie between its admission and its close; the sessions admitted in a time range
 * lie between the first of those admissions and the last of their closes.
 */

import type BetterSqlite3 from 'better-sqlite3';
import type { StoredEvent } from './events.ts';
import { EVENT_ROW_COLUMNS, EVENT_ROWS, type EventRow, toStoredEvent } from './read-events.ts';
import { type UsageFilter, usageJsonChunks, wantsRejections } from './usage-projection.ts';

type Database = BetterSqlite3.Database;

export type { UsageFilter };

export interface UsageExportOptions {
  /** the document's `generatedAt`, in milliseconds since the epoch (default Date.now()) */
  generatedAt?: number;
  /** [P-46] only part of the history */
  filter?: UsageFilter;
}

export function usageJsonChunksFromDatabase(
  db: Database,
  options: UsageExportOptions = {},
): Generator<string, void, undefined> {
  const generatedAt = options.generatedAt ?? Date.now();
  const filter = options.filter;
  // Both queries stop at the same position, so the two lists describe one moment even though they are read one after
  // the other (each in its own snapshot).
  const upTo = lastPosition(db);
  const range = sessionRange(db, filter, upTo);
  return usageJsonChunks({
    sessions: lazily(() => (range ? sessionEvents(db, range) : [][Symbol.iterator]())),
    rejected: lazily(() => rejectedEvents(db, wantsRejections(filter) ? upTo : 0)),
    generatedAt,
    ...(filter ? { filter } : {}),
  });
}

/** The position of the newest event, 0 in an empty history; positions are never reused, so it counts the events. */
export function lastPosition(db: Database): number {
  return db.prepare<[], number>('SELECT coalesce(max(position), 0) FROM event_rows').pluck().get() ?? 0;
}

/** The positions and session numbers that hold every selected session's events; null when no session is selected. */
export interface SessionRange {
  fromPosition: number;
  toPosition: number;
  fromSession: number;
  toSession: number;
}

/**
 * [P-46] Where the selected sessions' events are. Without a filter: everywhere. With one session: from its admission
 * to its close (or the end). With a time range: from the first admission in it to the last close of the sessions
 * admitted in it (or the end, if one of them is still open). Read through the partial indexes of admissions and
 * closes, never by a scan of the events.
 */
export function sessionRange(db: Database, filter: UsageFilter | undefined, upTo: number): SessionRange | null {
  const all = { fromPosition: 1, toPosition: upTo, fromSession: 0, toSession: Number.MAX_SAFE_INTEGER };
  if (!filter || (filter.session === undefined && filter.since === undefined && filter.until === undefined)) {
    return all;
  }
  const admitted = db
    .prepare<[{ session: number | null; since: number; until: number; upTo: number }], [number, number, number]>(
      `SELECT min(position), min(session), max(session) FROM event_rows INDEXED BY events_admitted
       WHERE type = 'session-admitted' AND (@session IS NULL OR session = @session)
         AND at >= @since AND at < @until AND position <= @upTo`,
    )
    .raw()
    .get({
      session: filter.session ?? null,
      since: filter.since ?? Number.MIN_SAFE_INTEGER,
      until: filter.until ?? Number.MAX_SAFE_INTEGER,
      upTo,
    });
  const [fromPosition, fromSession, toSession] = admitted ?? [null, null, null];
  if (fromPosition === null || fromSession === null || toSession === null) return null;
  return { fromPosition, toPosition: lastClose(db, fromSession, toSession, upTo), fromSession, toSession };
}

/**
 * The position of the last close of the sessions numbered fromSession..toSession, or `upTo` when one of those that
 * were admitted is not closed (yet).
 */
function lastClose(db: Database, fromSession: number, toSession: number, upTo: number): number {
  const range = { fromSession, toSession, upTo };
  const admissions = db
    .prepare<[typeof range], number>(
      `SELECT count(*) FROM event_rows INDEXED BY events_admitted
       WHERE type = 'session-admitted' AND session BETWEEN @fromSession AND @toSession AND position <= @upTo`,
    )
    .pluck()
    .get(range);
  const [closes, last] = db
    .prepare<[typeof range], [number, number | null]>(
      `SELECT count(DISTINCT session), max(position) FROM event_rows INDEXED BY events_closed
       WHERE type = 'session-closed' AND session BETWEEN @fromSession AND @toSession AND position <= @upTo`,
    )
    .raw()
    .get(range) ?? [0, null];
  // A close can follow other facts of its session (a transfer that did not end whole): the close is the last one.
  return closes < (admissions ?? 0) || last === null ? upTo : last;
}

/**
 * Every event of a numbered connection but its rejection, within the range, grouped by connection number, each
 * connection's events in position order. The history keeps no index by session (each image served would have to be
 * written into it), so SQLite sorts: its sorter spills to temporary files past its cache, which keeps memory flat for
 * any history size. Connections never admitted (dropped before their HELLO) come through too; the projection leaves
 * them out.
 */
export function* sessionEvents(db: Database, range: SessionRange): Generator<StoredEvent, void, undefined> {
  const statement = db
    .prepare<[SessionRange], EventRow>(
      `SELECT ${EVENT_ROW_COLUMNS} FROM ${EVENT_ROWS}
     WHERE e.position BETWEEN @fromPosition AND @toPosition AND e.session BETWEEN @fromSession AND @toSession
       AND e.type <> 'connection-rejected'
     ORDER BY e.session, e.position`,
    )
    .raw();
  for (const row of statement.iterate(range)) yield toStoredEvent(row);
}

/** The rejections in the order of their connection numbers, read through their partial index: no sort, no scan. */
export function* rejectedEvents(db: Database, upTo: number): Generator<StoredEvent, void, undefined> {
  const statement = db
    .prepare<[{ upTo: number }], EventRow>(
      `SELECT ${EVENT_ROW_COLUMNS} FROM ${EVENT_ROWS}
     WHERE e.type = 'connection-rejected' AND e.position <= @upTo
     ORDER BY e.session`,
    )
    .raw();
  for (const row of statement.iterate({ upTo })) yield toStoredEvent(row);
}

/** Nothing is queried until the projection reaches this list. */
function lazily<T>(open: () => Iterator<T>): Iterable<T> {
  return { [Symbol.iterator]: open };
}
