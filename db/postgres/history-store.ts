/**
 * Reads and registry writes of a PostgreSQL history: the same projections as SQLite's (db/client-registry.ts,
 * db/identity-usage.ts) fed from PostgreSQL, a page at a time. Rows hold the same JSON text as SQLite's.
 *
 * [P-60] Registry events are inserted under a transaction-level advisory lock, so that their positions commit in the
 * order they were taken (a reader paging by position never skips one committed late), and a `clients` change ends
 * with NOTIFY imgcache_registry, delivered to every listening node when the transaction commits.
 */
import { applyRegistryEvent, emptyRegistry, type Registry } from '../client-registry.ts';
import type { HistoryEvent, StoredEvent } from '../events.ts';
import { type CountedEvent, type KeyedAdmission, projectIdentityUsage } from '../identity-usage.ts';
import { EVENT_COLUMNS, type EventRow, REGISTRY_TYPES_SQL, toStoredEvent } from '../read-events.ts';
import type { EventRow as NewEventRow } from '../row-committer.ts';
import { insertEvents } from './insert-events.ts';
import { inTransaction, type Pool } from './pool.ts';
import { ADVISORY_LOCKS } from './schema.ts';

/** [P-66] The channel a `clients` change is announced on. */
export const REGISTRY_NOTIFY_CHANNEL = 'imgcache_registry';

/** Rows read per page: a long history is never held in memory whole. */
export const PAGE_ROWS = 2_000;

type Queryable = Pick<Pool, 'query'>;

/** A row of `SELECT ${EVENT_COLUMNS}` as an event. */
export function toEvent(row: Record<string, unknown>): StoredEvent {
  return toStoredEvent([row.position, row.at, row.session, row.type, row.data] as EventRow);
}

function toEvents(rows: readonly Record<string, unknown>[]): StoredEvent[] {
  return rows.map(toEvent);
}

/** The registry events after `afterPosition`, in order. */
export async function readRegistryEvents(db: Queryable, afterPosition = 0): Promise<StoredEvent[]> {
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE type IN ${REGISTRY_TYPES_SQL} AND position > $1 ORDER BY position`,
    [afterPosition],
  );
  return toEvents(result.rows);
}

export async function loadRegistry(db: Queryable): Promise<Registry> {
  const registry = emptyRegistry();
  for (const event of await readRegistryEvents(db)) applyRegistryEvent(registry, event);
  return registry;
}

/**
 * Reads the registry under the registry lock, asks `decide` what to append (it throws to refuse), appends it and
 * announces it, all in one transaction, stamped `at`. Returns what was appended.
 */
export async function changeRegistry(
  pool: Pool,
  decide: (registry: Registry) => HistoryEvent[],
  at: number = Date.now(),
): Promise<HistoryEvent[]> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.registry]);
    const events = decide(await loadRegistry(client));
    await insertEvents(
      client,
      events.map((event): NewEventRow => [at, null, event.type, JSON.stringify(event.data)]),
      null,
    );
    if (events.length > 0) await client.query(`NOTIFY ${REGISTRY_NOTIFY_CHANNEL}`);
    return events;
  });
}

/** Every keyed session ever admitted, through the partial index of admissions. */
export async function keyedAdmissions(db: Queryable): Promise<Array<KeyedAdmission & { at: number }>> {
  const result = await db.query<{ session: number; at: number; identity: string }>(
    `SELECT session, at, data::json ->> 'identity' AS identity FROM events
     WHERE type = 'session-admitted' AND data::json ->> 'identity' IS NOT NULL`,
  );
  return result.rows;
}

/** The sessions closed, among `sessions`, with the time of their first close. */
export async function closesOf(db: Queryable, sessions: readonly number[]): Promise<Map<number, number>> {
  const closes = new Map<number, number>();
  if (sessions.length === 0) return closes;
  const result = await db.query<{ session: number; at: number }>(
    `SELECT session, min(at) AS at FROM events WHERE type = 'session-closed' AND session = ANY($1::bigint[])
     GROUP BY session`,
    [sessions],
  );
  for (const row of result.rows) closes.set(row.session, row.at);
  return closes;
}

/**
 * [P-64] Images each identity has used in its current window: the keyed admissions, and the images served since the
 * earliest window start (less an hour, for a wall clock set back) by keyed sessions, read by pages of positions.
 */
export async function identityUsage(
  db: Queryable,
  windowStartOf: (identity: string) => number | null,
  slackMs = 3_600_000,
): Promise<Map<string, number>> {
  const admissions = await keyedAdmissions(db);
  let since = Number.POSITIVE_INFINITY;
  for (const { identity } of admissions) {
    const start = windowStartOf(identity);
    if (start !== null) since = Math.min(since, start);
  }
  if (admissions.length === 0 || !Number.isFinite(since)) return new Map();
  const from = await firstPositionSince(db, since - slackMs);
  // Only the keyed sessions' images count: the anonymous ones are never read.
  const keyed = admissions.map((admission) => admission.session);
  const counted: CountedEvent[] = [];
  for (let after = from - 1; ; ) {
    const page = await db.query<{ position: number; session: number | null; at: number; type: string }>(
      `SELECT position, session, at, type FROM events
       WHERE position > $1 AND type IN ('image-served', 'transfer-incomplete') AND session = ANY($2::bigint[])
       ORDER BY position LIMIT ${PAGE_ROWS}`,
      [after, keyed],
    );
    for (const { session, at, type } of page.rows) counted.push({ session, at, type });
    if (page.rows.length < PAGE_ROWS) break;
    after = page.rows[page.rows.length - 1]?.position ?? after;
  }
  return projectIdentityUsage({ admissions, events: counted, windowStartOf });
}

/** The position of the first event at or after `since` (ms), by bisecting positions (events come in time order). */
async function firstPositionSince(db: Queryable, since: number): Promise<number> {
  const bounds = await db.query<{ low: number | null; high: number | null }>(
    'SELECT min(position) AS low, max(position) AS high FROM events',
  );
  let low = bounds.rows[0]?.low ?? 1;
  let high = bounds.rows[0]?.high ?? 0;
  if (high < low) return 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const row = await db.query<{ at: number }>('SELECT at FROM events WHERE position >= $1 ORDER BY position LIMIT 1', [
      middle,
    ]);
    const at = row.rows[0]?.at ?? Number.POSITIVE_INFINITY;
    if (at < since) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Sessions admitted and never closed, among those recorded by `node` (a node's own sessions, left open when it
 * stopped without recording their closes).
 */
export async function orphanedSessions(db: Queryable, node: string): Promise<number[]> {
  const result = await db.query<{ session: number }>(
    `SELECT session FROM events WHERE type = 'session-admitted' AND node = $1
     EXCEPT SELECT session FROM events WHERE type = 'session-closed'
     ORDER BY session`,
    [node],
  );
  return result.rows.map((row) => row.session);
}

/** Events in position order, a page at a time (tests and tools: what is on record). */
export async function readEvents(
  db: Queryable,
  query: { afterPosition?: number; session?: number; limit?: number } = {},
): Promise<StoredEvent[]> {
  const bySession = query.session !== undefined;
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE position > $1 ${bySession ? 'AND session = $3' : ''}
     ORDER BY position LIMIT $2`,
    bySession
      ? [query.afterPosition ?? 0, query.limit ?? null, query.session]
      : [query.afterPosition ?? 0, query.limit ?? null],
  );
  return toEvents(result.rows);
}
