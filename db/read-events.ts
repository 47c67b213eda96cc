/** Reading the history back, in position order: as an array for small reads, or as an iterator that streams rows. */

import type BetterSqlite3 from 'better-sqlite3';
import { REGISTRY_EVENT_TYPES } from './client-registry.ts';
import type { StoredEvent } from './events.ts';
import { expandServedData } from './image-versions.ts';

type Database = BetterSqlite3.Database;

export interface EventQuery {
  /** only events after this position (default 0: from the start) */
  afterPosition?: number;
  /** only the events of this session (connection number) */
  session?: number;
  /** at most this many events */
  limit?: number;
}

/**
 * A row of the history as SQLite returns it in raw mode (arrays cost less to build than objects): the columns of
 * EVENT_COLUMNS, then on SQLite those of its image version (image, bytes, sha256), null for other rows.
 */
export type EventRow = [
  position: number,
  at: number,
  session: number | null,
  type: string,
  data: string,
  image?: string | null,
  bytes?: number | null,
  sha256?: string | null,
];

/** The columns of an event: PostgreSQL's `events`, SQLite's `event_rows` (for rows that are never an image served). */
export const EVENT_COLUMNS = 'position, at, session, type, data';

/**
 * [SQLite] An EventRow's columns from `event_rows e` joined with its image version; use with EVENT_ROWS, and name
 * event_rows' columns `e.` in the rest of the statement.
 */
export const EVENT_ROW_COLUMNS = 'e.position, e.at, e.session, e.type, e.data, v.image, v.bytes, v.sha256';
export const EVENT_ROWS = 'event_rows e LEFT JOIN image_versions v ON v.version = e.image_version';

/** [P-60] The registry's event types as an SQL list, `('client-registered', …)`: the same for SQLite and PostgreSQL. */
export const REGISTRY_TYPES_SQL = `(${REGISTRY_EVENT_TYPES.map((type) => `'${type}'`).join(', ')})`;

export function readEvents(db: Database, query: EventQuery = {}): StoredEvent[] {
  const [statement, params] = selectEvents(db, query);
  return statement.all(params).map(toStoredEvent);
}

export function* iterateEvents(db: Database, query: EventQuery = {}): Generator<StoredEvent, void, undefined> {
  const [statement, params] = selectEvents(db, query);
  for (const row of statement.iterate(params)) yield toStoredEvent(row);
}

/**
 * The table only ever holds events this code wrote, at a schema version it knows, so the row is trusted. An image
 * served with an image version is the compact form (db/image-versions.ts).
 */
export function toStoredEvent(row: EventRow): StoredEvent {
  const [position, at, session, type, data, image, bytes, sha256] = row;
  if (typeof image === 'string' && typeof bytes === 'number' && typeof sha256 === 'string') {
    return { position, at, session, type, data: expandServedData(data, image, bytes, sha256) } as StoredEvent;
  }
  return { position, at, session, type, data: JSON.parse(data) } as StoredEvent;
}

interface SelectParams {
  after: number;
  session: number | null;
  limit: number;
}

// Prepared per call, not cached: an iterating statement stays busy until it ends, so one shared statement could
// not serve two reads at once; preparing costs microseconds against the rows read.
function selectEvents(
  db: Database,
  query: EventQuery,
): [BetterSqlite3.Statement<[SelectParams], EventRow>, SelectParams] {
  const bySession = query.session !== undefined;
  const statement = db
    .prepare<SelectParams, EventRow>(
      `SELECT ${EVENT_ROW_COLUMNS} FROM ${EVENT_ROWS}
     WHERE e.position > @after ${bySession ? 'AND e.session = @session' : ''}
     ORDER BY e.position LIMIT @limit`,
    )
    .raw();
  // LIMIT -1 is SQLite's "no limit"; better-sqlite3 ignores `session` when the statement does not use it.
  return [statement, { after: query.afterPosition ?? 0, session: query.session ?? null, limit: query.limit ?? -1 }];
}
