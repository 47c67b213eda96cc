/**
 * [P-60] [P-64] The registry and the identities' quota usage, read from and written to an SQLite history. The
 * projections themselves are pure (client-registry.ts, identity-usage.ts); this file only feeds them rows.
 *
 * Registry events are read through their partial index (events_registry): a running server's look for new ones is
 * one probe, whatever the size of the history. The `clients` commands append through their own connection, in an
 * IMMEDIATE transaction that re-reads the registry under the write lock, so two commands at once cannot both add
 * the same name; the server's instance lock is for servers only.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { applyRegistryEvent, emptyRegistry, type Registry } from './client-registry.ts';
import type { HistoryEvent, StoredEvent } from './events.ts';
import { type CountedEvent, type KeyedAdmission, projectIdentityUsage } from './identity-usage.ts';
import { EVENT_COLUMNS, type EventRow, REGISTRY_TYPES_SQL, toStoredEvent } from './read-events.ts';
import { insertEventsSql } from './row-committer.ts';

type Database = BetterSqlite3.Database;

/**
 * The registry events, in a WHERE that can use their partial index: its two range terms repeat the index's own
 * (schema migration 4: the types that begin with 'client-'), the IN list names them exactly.
 */
export const REGISTRY_EVENTS = `type > 'client-' AND type < 'client.' AND type IN ${REGISTRY_TYPES_SQL}`;

/** The registry events after `afterPosition`, in order. */
export function readRegistryEvents(db: Database, afterPosition = 0): StoredEvent[] {
  return db
    .prepare<[number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM event_rows INDEXED BY events_registry
       WHERE ${REGISTRY_EVENTS} AND position > ? ORDER BY position`,
    )
    .raw()
    .all(afterPosition)
    .map(toStoredEvent);
}

/** Applies the registry events after the registry's position; returns them. */
export function catchUpRegistry(db: Database, registry: Registry): StoredEvent[] {
  const events = readRegistryEvents(db, registry.position);
  for (const event of events) applyRegistryEvent(registry, event);
  return events;
}

export function loadRegistry(db: Database): Registry {
  const registry = emptyRegistry();
  catchUpRegistry(db, registry);
  return registry;
}

/**
 * Reads the registry under the write lock, asks `decide` what to append (it throws to refuse), and appends it in the
 * same transaction, stamped `at`. Returns what was appended.
 */
export function changeRegistry(
  db: Database,
  decide: (registry: Registry) => HistoryEvent[],
  at: number = Date.now(),
): HistoryEvent[] {
  const insert = db.prepare<[number, null, string, string, null]>(insertEventsSql(1));
  const run = db.transaction(() => {
    const events = decide(loadRegistry(db));
    for (const event of events) insert.run(at, null, event.type, JSON.stringify(event.data), null);
    return events;
  });
  return run.immediate();
}

/** Every keyed session ever admitted, through the partial index of admissions. */
export function keyedAdmissions(db: Database): Array<KeyedAdmission & { at: number }> {
  return db
    .prepare<[], [number, number, string]>(
      `SELECT session, at, json_extract(data, '$.identity') FROM event_rows INDEXED BY events_admitted
       WHERE type = 'session-admitted' AND json_extract(data, '$.identity') IS NOT NULL`,
    )
    .raw()
    .all()
    .map(([session, at, identity]) => ({ session, at, identity }));
}

/** The sessions closed, among `sessions`, with the time of their close, through the partial index of closes. */
export function closesOf(db: Database, sessions: readonly number[]): Map<number, number> {
  const closes = new Map<number, number>();
  if (sessions.length === 0) return closes;
  const statement = db
    .prepare<[number], [number]>(
      `SELECT at FROM event_rows INDEXED BY events_closed WHERE type = 'session-closed' AND session = ?`,
    )
    .raw();
  for (const session of sessions) {
    const row = statement.get(session);
    if (row) closes.set(session, row[0]);
  }
  return closes;
}

/**
 * The position of the first event at or after `since` (ms), found by bisecting positions (rows are appended in time
 * order; a wall clock set back makes this start a little early, never late, within `slackMs`).
 */
function firstPositionSince(db: Database, since: number, slackMs = 3_600_000): number {
  const bounds = db
    .prepare<[], [number | null, number | null]>('SELECT min(position), max(position) FROM event_rows')
    .raw()
    .get();
  let low = bounds?.[0] ?? 1;
  let high = bounds?.[1] ?? 0;
  if (high < low) return 1;
  const atOf = db
    .prepare<[number], number>('SELECT at FROM event_rows WHERE position >= ? ORDER BY position LIMIT 1')
    .pluck();
  const target = since - slackMs;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const at = atOf.get(middle) ?? Number.POSITIVE_INFINITY;
    if (at < target) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * [P-64] Images each identity has used in its current window at `now`. `windowStartOf` gives an identity's window
 * start (null: its quota has no period). Reads the keyed admissions, and the images served since the earliest window
 * start.
 */
export function identityUsageFromDatabase(
  db: Database,
  windowStartOf: (identity: string) => number | null,
): Map<string, number> {
  const admissions = keyedAdmissions(db);
  if (admissions.length === 0) return new Map();
  let since = Number.POSITIVE_INFINITY;
  for (const { identity } of admissions) {
    const start = windowStartOf(identity);
    if (start !== null) since = Math.min(since, start);
  }
  if (!Number.isFinite(since)) return new Map();
  const from = firstPositionSince(db, since);
  const events = db
    .prepare<[number], [number | null, number, string]>(
      `SELECT session, at, type FROM event_rows
       WHERE position >= ? AND type IN ('image-served', 'transfer-incomplete') ORDER BY position`,
    )
    .raw();
  function* counted(): Generator<CountedEvent> {
    for (const [session, at, type] of events.iterate(from)) yield { session, at, type };
  }
  return projectIdentityUsage({ admissions, events: counted(), windowStartOf });
}
