/**
 * The schema of a PostgreSQL history as an ordered list of migrations; the table `imgcache_schema` holds the version
 * of each one applied. Nodes starting together migrate one at a time: the migrator holds a session-level advisory
 * lock while it reads the version and applies what is missing, each migration in its own transaction.
 */
import { HistoryError, HistoryTooNewError, HistoryUnavailableError } from '../errors.ts';
import { CLUSTER_MIGRATION } from './cluster-schema.ts';
import { openPool, type Pool, type PoolOptions, redactUrl } from './pool.ts';

/**
 * Advisory lock keys of the history (one 64-bit key space per database: keys are allotted here, in one place).
 * 0x696d67 is 'img'.
 */
export const ADVISORY_LOCKS = {
  /** held while migrating */
  migrate: 0x696d6700_01,
  /** held (transaction-level) while registry events are inserted, so their positions commit in order */
  registry: 0x696d6700_02,
  /** held (transaction-level) while a session slot is claimed: the cluster's count is read and taken at once */
  slots: 0x696d6700_03,
} as const;

/** Migration n (1-based) is `POSTGRES_MIGRATIONS[n - 1]`. Append only: never edit one that has shipped. */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  // 1: the events, as in SQLite (the same JSON text in data, so the projections are shared), plus the node that
  // recorded each one; the partial indexes of SQLite's version 3; and the sequence connection numbers come from.
  `
  CREATE TABLE events (
    position bigserial PRIMARY KEY, -- the order of the history
    at bigint NOT NULL,             -- milliseconds since the epoch
    session bigint,                 -- the connection number, null for server-wide events
    type text NOT NULL,
    data text NOT NULL,             -- JSON, as text
    node text                       -- the node that recorded it (null: a command)
  );
  CREATE INDEX events_by_session ON events (session, position) WHERE session IS NOT NULL;
  CREATE INDEX events_admitted ON events (session) WHERE type = 'session-admitted';
  CREATE INDEX events_closed ON events (session) WHERE type = 'session-closed';
  CREATE INDEX events_rejected ON events (session) WHERE type = 'connection-rejected';
  CREATE INDEX events_dropped ON events (session) WHERE type = 'connection-dropped';
  CREATE INDEX events_registry ON events (position)
    WHERE type IN ('client-registered', 'client-key-rotated', 'client-tier-changed', 'client-revoked');
  -- Each node takes a block of CONNECTION_NUMBER_BLOCK numbers with one nextval (db/postgres/connection-numbers.ts).
  CREATE SEQUENCE connection_numbers AS bigint START 1 INCREMENT 64;
  `,
  // 2: what the nodes of a cluster share besides the events: nodes and their heartbeats, session slots, and keyed
  // quotas per window (db/postgres/cluster-schema.ts).
  CLUSTER_MIGRATION,
  // 3: [P-83] a session is closed on record once, even when two nodes commit its close at the same moment (a node
  // declared lost, back with the closes it held, and the node that declared it lost): a unique index of closes, which
  // INSERT ... ON CONFLICT DO NOTHING honours (db/postgres/insert-events.ts). A history that already holds a session
  // closed twice (recorded before this version) keeps its rows as they are and goes without the index: there a close
  // is still left out when one is on record already, and only two closes committed at the same moment escape.
  `
  DO $$
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM events WHERE type = 'session-closed' GROUP BY session HAVING count(*) > 1) THEN
      CREATE UNIQUE INDEX events_closed_once ON events (session) WHERE type = 'session-closed';
    END IF;
  END $$;
  `,
];

export const POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS.length;

/** Connection numbers a node takes at a time: the INCREMENT of the sequence. */
export const CONNECTION_NUMBER_BLOCK = 64;

/**
 * A pool to the history at `url`, its schema brought up to date: what every user of a PostgreSQL history starts with
 * (the server, the `history` and `clients` commands). A history that cannot be reached or migrated is refused with
 * history-unavailable, naming the URL without its password.
 */
export async function openHistoryPool(url: string, options: PoolOptions = {}): Promise<Pool> {
  const pool = openPool(url, options);
  try {
    await migratePostgres(pool, url);
    return pool;
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error instanceof HistoryError ? error : new HistoryUnavailableError(redactUrl(url), error);
  }
}

/** Brings the history at `url` up to POSTGRES_SCHEMA_VERSION; resolves with how many migrations ran here. */
export async function migratePostgres(pool: Pool, url: string): Promise<number> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCKS.migrate]);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS imgcache_schema (version integer PRIMARY KEY)');
      const version = await versionOf(client);
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new HistoryTooNewError(redactUrl(url), version, POSTGRES_SCHEMA_VERSION);
      }
      for (let next = version + 1; next <= POSTGRES_SCHEMA_VERSION; next++) {
        await client.query('BEGIN');
        try {
          await client.query(POSTGRES_MIGRATIONS[next - 1] ?? '');
          await client.query('INSERT INTO imgcache_schema (version) VALUES ($1)', [next]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      }
      return POSTGRES_SCHEMA_VERSION - version;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCKS.migrate]);
    }
  } catch (error) {
    broken = error as Error;
    throw error;
  } finally {
    client.release(broken);
  }
}

/** The schema version of the history (0: none yet). */
export async function postgresSchemaVersion(pool: Pool): Promise<number> {
  const exists = await pool.query<{ found: boolean }>("SELECT to_regclass('imgcache_schema') IS NOT NULL AS found");
  if (!exists.rows[0]?.found) return 0;
  return versionOf(pool);
}

async function versionOf(queryable: Pick<Pool, 'query'>): Promise<number> {
  const result = await queryable.query<{ version: number | null }>(
    'SELECT max(version) AS version FROM imgcache_schema',
  );
  return result.rows[0]?.version ?? 0;
}
