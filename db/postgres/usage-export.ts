/**
 * [P-32] [P-46] The usage document from a PostgreSQL history: the pure projection of db/usage-projection.ts fed a
 * page at a time (keyset pages in (session, position) order through the events_by_session index), so the document
 * streams out and the history is never held in memory whole. Both lists stop at the position that was last when the
 * export began, so they describe one moment.
 */
import { createHash } from 'node:crypto';
import type { StoredEvent } from '../events.ts';
import { isoTime } from '../iso-time.ts';
import { EVENT_COLUMNS } from '../read-events.ts';
import type { UsageExportOptions } from '../usage-export.ts';
import { clientEntries, PieceBuffer, rejections, selectsClient, wantsRejections } from '../usage-projection.ts';
import type { UsageExport, UsageRead } from '../usage-threads.ts';
import { PAGE_ROWS, toEvent } from './history-store.ts';
import type { Pool } from './pool.ts';

type Queryable = Pick<Pool, 'query'>;

export async function* postgresUsageChunks(
  db: Queryable,
  options: UsageExportOptions = {},
): AsyncGenerator<string, void, undefined> {
  const generatedAt = options.generatedAt ?? Date.now();
  const filter = options.filter;
  const last = await db.query<{ position: number }>('SELECT coalesce(max(position), 0) AS position FROM events');
  const upTo = last.rows[0]?.position ?? 0;
  const pieces = new PieceBuffer();
  pieces.add(`{"generatedAt":${JSON.stringify(isoTime(generatedAt))},"clients":[`);
  // One session's events at a time: a session's entry is written once its last event has been read.
  let session: StoredEvent[] = [];
  const endSession = () => {
    for (const entry of clientEntries(session)) {
      if (selectsClient(filter, entry.session, entry.connectedAt, entry.client.identity)) {
        pieces.item(JSON.stringify(entry.client));
      }
    }
    session = [];
  };
  for await (const event of await selectedEvents(db, filter, upTo)) {
    if (session.length > 0 && session[0]?.session !== event.session) endSession();
    session.push(event);
    if (pieces.full) yield pieces.take();
  }
  endSession();
  pieces.add('],"rejected":[');
  const addRejections = (event: StoredEvent) => {
    for (const rejection of rejections([event], filter)) pieces.item(JSON.stringify(rejection));
  };
  // [P-46] [P-67] One client's document, by its session or its identity, holds no rejections.
  if (wantsRejections(filter)) {
    // A connection turned away while the node had no number to give it has none on record (SQLite's order, NULL
    // first, puts these first too); they are few, the ones of an outage.
    const unnumbered = await db.query(
      `SELECT ${EVENT_COLUMNS} FROM events
       WHERE session IS NULL AND type = 'connection-rejected' AND position <= $1 ORDER BY position`,
      [upTo],
    );
    for (const event of unnumbered.rows.map(toEvent)) addRejections(event);
    for await (const event of pages(db, 'rejected', upTo, ALL_SESSIONS)) {
      addRejections(event);
      if (pieces.full) yield pieces.take();
    }
  }
  pieces.add(']}');
  yield pieces.take();
}

/** Sessions read at once when they are named one by one (an identity's). */
const SESSIONS_PER_READ = 50;

/** The events of the sessions a filter can select, in (session, position) order. */
async function selectedEvents(
  db: Queryable,
  filter: UsageExportOptions['filter'],
  upTo: number,
): Promise<AsyncIterable<StoredEvent> | Iterable<StoredEvent>> {
  if (filter?.session === undefined && filter?.identity !== undefined) {
    return identityEvents(db, await sessionsOf(db, filter.identity, filter, upTo), upTo);
  }
  const range = await sessionRange(db, filter, upTo);
  return range ? pages(db, 'sessions', upTo, range) : [];
}

/**
 * [P-67] The sessions of one identity admitted in the filter's time range: a keyed client reading its own history
 * reads only its sessions' rows, however long the history.
 */
async function sessionsOf(
  db: Queryable,
  identity: string,
  filter: NonNullable<UsageExportOptions['filter']>,
  upTo: number,
): Promise<number[]> {
  const result = await db.query<{ session: number }>(
    `SELECT session FROM events
     WHERE type = 'session-admitted' AND position <= $1 AND data::json ->> 'identity' = $2 AND at >= $3 AND at < $4
     ORDER BY session`,
    [upTo, identity, filter.since ?? Number.MIN_SAFE_INTEGER, filter.until ?? Number.MAX_SAFE_INTEGER],
  );
  return result.rows.map((row) => row.session);
}

async function* identityEvents(
  db: Queryable,
  sessions: readonly number[],
  upTo: number,
): AsyncGenerator<StoredEvent, void, undefined> {
  for (let index = 0; index < sessions.length; index += SESSIONS_PER_READ) {
    const page = await db.query(
      `SELECT ${EVENT_COLUMNS} FROM events
       WHERE session = ANY($1::bigint[]) AND type <> 'connection-rejected' AND position <= $2
       ORDER BY session, position`,
      [sessions.slice(index, index + SESSIONS_PER_READ), upTo],
    );
    for (const row of page.rows) yield toEvent(row);
  }
}

/** Session numbers from, to (inclusive). */
type SessionRange = [from: number, to: number];

const ALL_SESSIONS: SessionRange = [0, Number.MAX_SAFE_INTEGER];

/**
 * [P-46] The numbers of the sessions a filter can select: one session; or those admitted in a time range, from the
 * first to the last of them (numbers grow with time on each node, so others in between are read and left out by the
 * projection); or all. Null when no session is selected.
 */
async function sessionRange(
  db: Queryable,
  filter: UsageExportOptions['filter'],
  upTo: number,
): Promise<SessionRange | null> {
  if (filter?.session !== undefined) return [filter.session, filter.session];
  if (filter?.since === undefined && filter?.until === undefined) return ALL_SESSIONS;
  const result = await db.query<{ low: number | null; high: number | null }>(
    `SELECT min(session) AS low, max(session) AS high FROM events
     WHERE type = 'session-admitted' AND at >= $1 AND at < $2 AND position <= $3`,
    [filter.since ?? Number.MIN_SAFE_INTEGER, filter.until ?? Number.MAX_SAFE_INTEGER, upTo],
  );
  const { low, high } = result.rows[0] ?? { low: null, high: null };
  return low === null || high === null ? null : [low, high];
}

/** The events of numbered connections but rejections (or the rejections), in (session, position) order, by pages. */
async function* pages(
  db: Queryable,
  which: 'sessions' | 'rejected',
  upTo: number,
  [from, to]: SessionRange,
): AsyncGenerator<StoredEvent, void, undefined> {
  const kind = which === 'sessions' ? "type <> 'connection-rejected'" : "type = 'connection-rejected'";
  let after: [number, number] = [from - 1, Number.MAX_SAFE_INTEGER];
  for (;;) {
    const page = await db.query(
      `SELECT ${EVENT_COLUMNS} FROM events
       WHERE session IS NOT NULL AND ${kind} AND position <= $1 AND (session, position) > ($2, $3) AND session <= $4
       ORDER BY session, position LIMIT ${PAGE_ROWS}`,
      [upTo, after[0], after[1], to],
    );
    for (const row of page.rows) yield toEvent(row);
    const tail = page.rows[page.rows.length - 1];
    if (page.rows.length < PAGE_ROWS || !tail) return;
    after = [tail.session, tail.position];
  }
}

/**
 * An export as the reply writer reads it (db/usage-threads.ts's UsageExport): chunks of at most `chunkBytes`, then
 * the document's length and SHA-256.
 */
export function usageExportOf(pieces: AsyncGenerator<string, void, undefined>, chunkBytes: number): UsageExport {
  const hash = createHash('sha256');
  let total = 0;
  let pending: Buffer | null = null;
  let cancelled = false;
  return {
    async read(): Promise<UsageRead> {
      if (cancelled) throw new Error('the usage export was cancelled');
      let buffered = pending;
      pending = null;
      while (buffered === null || buffered.length < chunkBytes) {
        const next = await pieces.next();
        if (next.done) break;
        const encoded = Buffer.from(next.value, 'utf8');
        buffered = buffered === null ? encoded : Buffer.concat([buffered, encoded]);
      }
      if (buffered === null || buffered.length === 0) return { end: { bytes: total, sha256: hash.digest('hex') } };
      if (buffered.length > chunkBytes) {
        pending = buffered.subarray(chunkBytes);
        buffered = buffered.subarray(0, chunkBytes);
      }
      hash.update(buffered);
      total += buffered.length;
      return { chunk: buffered };
    },
    cancel(): void {
      cancelled = true;
      void pieces.return(undefined);
    },
  };
}
