/**
 * [P-46] The usage document without rescanning the whole history each time. A closed session's entry in the
 * document never changes once its close is on record, so each one is projected once and kept, as JSON, in a cache
 * file beside the history (`<history>.usage-cache`, an SQLite file of its own: the history is never written). An
 * export first catches the cache up with the sessions closed since the last one (reading only the history from
 * the earliest of their admissions on), then streams the cached entries merged with the sessions still open
 * (projected from their events) and the rejections (read through their index).
 *
 * The cache holds nothing the history does not: deleting it costs one full projection at the next export. It names
 * the history it was built from (its first event) and the version of the projection (CLIENT_ENTRY_VERSION), and is
 * rebuilt when either changes or the history is shorter than what it covers.
 */
import BetterSqlite3 from 'better-sqlite3';
import type { StoredEvent } from './events.ts';
import { WRITER_CACHE_KIB } from './open-database.ts';
import { lastPosition, rejectedEvents, sessionEvents, type UsageExportOptions } from './usage-export.ts';
import {
  CLIENT_ENTRY_VERSION,
  type ClientEntry,
  clientEntries,
  selectsClient,
  usageJsonChunksFromParts,
  wantsRejections,
} from './usage-projection.ts';

type Database = BetterSqlite3.Database;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS clients (
    session INTEGER PRIMARY KEY,
    connected_at INTEGER NOT NULL,  -- ms since the epoch: the document's connectedAt
    closed_position INTEGER NOT NULL,
    json TEXT NOT NULL              -- the client's entry in the usage document
  );
`;

/** Where the cache of `historyFile` lives. */
export function usageCacheFile(historyFile: string): string {
  return `${historyFile}.usage-cache`;
}

export class UsageCache {
  readonly #db: Database;

  /** Opens (or creates) the cache file; throws when it cannot (a read-only folder: export without a cache then). */
  constructor(file: string) {
    this.#db = new BetterSqlite3(file, { timeout: 10_000 });
    try {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      // Like the history's writer: pages this connection adds are not worth keeping in memory (16 MB otherwise).
      this.#db.pragma(`cache_size = -${WRITER_CACHE_KIB}`);
      this.#db.exec(SCHEMA);
    } catch (error) {
      this.#db.close();
      throw error;
    }
  }

  close(): void {
    this.#db.close();
  }

  /**
   * The usage document of `history` (the same text as usageJsonChunksFromDatabase gives), from the cache caught up
   * first. The catch-up and the reads stop at the history's last position when the export starts.
   */
  *export(history: Database, options: UsageExportOptions = {}): Generator<string, void, undefined> {
    const generatedAt = options.generatedAt ?? Date.now();
    const filter = options.filter;
    const upTo = lastPosition(history);
    this.catchUp(history, upTo);
    const open = openEntries(history, upTo).filter((entry) =>
      selectsClient(filter, entry.session, entry.connectedAt, entry.client.identity),
    );
    const cached = this.#cachedClients(upTo, options);
    yield* usageJsonChunksFromParts({
      clientsJson: mergeBySession(cached, open),
      rejected: wantsRejections(filter) ? rejectedEvents(history, upTo) : [],
      generatedAt,
      ...(filter ? { filter } : {}),
    });
  }

  /** Projects and keeps every session closed at or before `upTo` that the cache does not hold yet. */
  catchUp(history: Database, upTo: number): void {
    // The history it was built from, and the projection's version: either changed, every entry is built again.
    const identity = JSON.stringify([CLIENT_ENTRY_VERSION, historyIdentity(history)]);
    const run = this.#db.transaction(() => {
      let from = Number(this.#meta('upTo') ?? 0);
      if (this.#meta('history') !== identity || from > upTo) {
        this.#db.exec('DELETE FROM clients');
        this.#setMeta('history', identity);
        from = 0;
      }
      if (from >= upTo) return;
      const closes = new Map<number, number>();
      for (const [session, position] of history
        .prepare<[{ from: number; upTo: number }], [number, number]>(
          `SELECT session, position FROM event_rows INDEXED BY events_closed
           WHERE type = 'session-closed' AND position > @from AND position <= @upTo`,
        )
        .raw()
        .iterate({ from, upTo })) {
        if (!closes.has(session)) closes.set(session, position);
      }
      if (closes.size > 0) {
        const fromSession = least(closes.keys());
        const toSession = greatest(closes.keys());
        const admitted = history
          .prepare<[{ fromSession: number; toSession: number; upTo: number }], number | null>(
            `SELECT min(position) FROM event_rows INDEXED BY events_admitted
             WHERE type = 'session-admitted' AND session BETWEEN @fromSession AND @toSession AND position <= @upTo`,
          )
          .pluck()
          .get({ fromSession, toSession, upTo });
        const insert = this.#db.prepare<[number, number, number, string]>(
          'INSERT OR REPLACE INTO clients (session, connected_at, closed_position, json) VALUES (?, ?, ?, ?)',
        );
        if (admitted !== null && admitted !== undefined) {
          const events = sessionEvents(history, {
            fromPosition: admitted,
            toPosition: greatest(closes.values()),
            fromSession,
            toSession,
          });
          for (const entry of clientEntries(events)) {
            const closed = closes.get(entry.session);
            if (closed !== undefined)
              insert.run(entry.session, entry.connectedAt, closed, JSON.stringify(entry.client));
          }
        }
      }
      this.#setMeta('upTo', String(upTo));
    });
    run.immediate();
  }

  /** The cached clients closed at or before `upTo` that the filter selects, in session order, as JSON. */
  *#cachedClients(upTo: number, options: UsageExportOptions): Generator<{ session: number; json: string }> {
    const filter = options.filter;
    const statement = this.#db
      .prepare<
        [{ upTo: number; session: number | null; identity: string | null; since: number; until: number }],
        [number, string]
      >(
        `SELECT session, json FROM clients
         WHERE closed_position <= @upTo AND (@session IS NULL OR session = @session)
           AND (@identity IS NULL OR json_extract(json, '$.identity') = @identity)
           AND connected_at >= @since AND connected_at < @until
         ORDER BY session`,
      )
      .raw();
    const params = {
      upTo,
      session: filter?.session ?? null,
      identity: filter?.identity ?? null, // [P-67]
      since: filter?.since ?? Number.MIN_SAFE_INTEGER,
      until: filter?.until ?? Number.MAX_SAFE_INTEGER,
    };
    for (const [session, json] of statement.iterate(params)) yield { session, json };
  }

  #meta(key: string): string | undefined {
    return this.#db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck().get(key);
  }

  #setMeta(key: string, value: string): void {
    this.#db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }
}

/** What the history is: its first event, which nothing ever changes. */
function historyIdentity(history: Database): string {
  const row = history
    .prepare<[], [number, string, string]>('SELECT at, type, data FROM event_rows ORDER BY position LIMIT 1')
    .raw()
    .get();
  return row ? JSON.stringify(row) : '';
}

/**
 * The sessions admitted at or before `upTo` and not closed then, projected from their events (read from the first
 * of their admissions on). Few: the sessions connected now, and those a killed server left open until its restart.
 */
function openEntries(history: Database, upTo: number): ClientEntry[] {
  const open = history
    .prepare<[{ upTo: number }], [number, number]>(
      `SELECT session, position FROM event_rows INDEXED BY events_admitted
       WHERE type = 'session-admitted' AND position <= @upTo
         AND session NOT IN (SELECT session FROM event_rows INDEXED BY events_closed
                             WHERE type = 'session-closed' AND position <= @upTo)`,
    )
    .raw()
    .all({ upTo });
  if (open.length === 0) return [];
  const wanted = new Set(open.map(([session]) => session));
  const from = least(open.map(([, position]) => position));
  const events = sessionEvents(history, {
    fromPosition: from,
    toPosition: upTo,
    fromSession: least(wanted),
    toSession: greatest(wanted),
  });
  return [...clientEntries(onlySessions(events, wanted))];
}

function* onlySessions(events: Iterable<StoredEvent>, wanted: ReadonlySet<number>): Generator<StoredEvent> {
  for (const event of events) if (event.session !== null && wanted.has(event.session)) yield event;
}

/** The cached clients and the open ones, both in session order, merged into one list of JSON texts. */
function* mergeBySession(
  cached: Iterable<{ session: number; json: string }>,
  open: readonly ClientEntry[],
): Generator<string, void, undefined> {
  let index = 0;
  for (const entry of cached) {
    while (index < open.length && (open[index] as ClientEntry).session < entry.session) {
      yield JSON.stringify((open[index++] as ClientEntry).client);
    }
    yield entry.json;
  }
  while (index < open.length) yield JSON.stringify((open[index++] as ClientEntry).client);
}

/** The smallest and the largest of many numbers (Math.min(...) takes only so many arguments). */
function least(numbers: Iterable<number>): number {
  let result = Number.POSITIVE_INFINITY;
  for (const number of numbers) if (number < result) result = number;
  return result;
}

function greatest(numbers: Iterable<number>): number {
  let result = Number.NEGATIVE_INFINITY;
  for (const number of numbers) if (number > result) result = number;
  return result;
}
