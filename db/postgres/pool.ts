/**
 * The connection pool to a PostgreSQL history, from its URL (postgres://… or postgresql://…).
 *
 * A lost connection must never take the server down: PostgreSQL going away is an outage the history rides out
 * (records fail, facts are held, the pool connects again when it is back). So the pool's 'error' (an idle client
 * lost) and every client's own 'error' (a client lost while checked out) are handled here, told to `onError`.
 *
 * Big integers (positions, times in milliseconds, connection numbers) come back as numbers, not strings: they stay
 * far below 2^53.
 */
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface PoolOptions {
  /** connections at most (default 4) */
  max?: number;
  /** how long to wait for a connection before failing, in milliseconds (default 5000) */
  connectTimeoutMs?: number;
  /**
   * how long a query may wait for its answer before it fails, in milliseconds (default 10000): a PostgreSQL cut off
   * by the network sends no reset, and a commit waiting forever would hold every answer behind it
   */
  queryTimeoutMs?: number;
  /** shown in pg_stat_activity (default 'imgcache') */
  applicationName?: string;
  /** told of each connection lost or broken in the background (default: ignored) */
  onError?: (error: Error) => void;
}

const INT8_OID = 20;

/** Type parsers of this pool only: bigint as number (the global pg.types are left alone). */
const TYPES = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  },
} as pg.CustomTypesConfig;

/** Whether `location` names a PostgreSQL history rather than an SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** The URL with its password hidden, for logs and error messages (never show the password of a URL). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

export function openPool(url: string, options: PoolOptions = {}): Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 4,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    query_timeout: options.queryTimeoutMs ?? 10_000,
    keepAlive: true,
    application_name: options.applicationName ?? 'imgcache',
    types: TYPES,
  });
  const onError = options.onError ?? (() => undefined);
  pool.on('error', onError);
  pool.on('connect', (client) => client.on('error', onError));
  return pool;
}

/** Runs `work` in one transaction on one client of the pool; rolls back if it throws. */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    broken = error as Error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    // A client whose transaction failed may have lost its connection: the pool gets rid of it rather than reuse it.
    client.release(broken);
  }
}
