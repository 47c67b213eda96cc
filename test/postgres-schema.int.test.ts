/**
 * The PostgreSQL history's schema on a real PostgreSQL: nodes starting together migrate it once (under an advisory
 * lock), a history newer than the code is refused, and the throwaway server of the tests stops and starts again on
 * the same port and data.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openPool } from '../db/postgres/pool.ts';
import { migratePostgres, POSTGRES_SCHEMA_VERSION, postgresSchemaVersion } from '../db/postgres/schema.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';

let postgres: PostgresInstance;

test.before(async () => {
  postgres = await startPostgres();
});

test.after(async () => {
  await postgres?.stop();
});

test('three nodes migrating the same empty history at once apply each migration once', async () => {
  const url = await postgres.createDatabase('together');
  const pools = [openPool(url), openPool(url), openPool(url)];
  try {
    const applied = await Promise.all(pools.map((pool) => migratePostgres(pool, url)));
    assert.is(
      applied.reduce((sum, count) => sum + count, 0),
      POSTGRES_SCHEMA_VERSION,
    );
    assert.is(await postgresSchemaVersion(pools[0] as (typeof pools)[0]), POSTGRES_SCHEMA_VERSION);
    const rows = await pools[0]?.query('SELECT version FROM imgcache_schema ORDER BY version');
    assert.equal(
      rows?.rows.map((row) => row.version),
      Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, index) => index + 1),
    );
  } finally {
    await Promise.all(pools.map((pool) => pool.end()));
  }
});

test('a history migrated by a newer server is refused with history-too-new', async () => {
  const url = await postgres.createDatabase('newer');
  const pool = openPool(url);
  try {
    await migratePostgres(pool, url);
    await pool.query('INSERT INTO imgcache_schema (version) VALUES ($1)', [POSTGRES_SCHEMA_VERSION + 1]);
    const error = await migratePostgres(pool, url).catch((caught: unknown) => caught);
    assert.is((error as { code?: string }).code, 'history-too-new');
  } finally {
    await pool.end();
  }
});

test('bigint columns come back as numbers, and a stopped PostgreSQL comes back on the same port with its data', async () => {
  const url = await postgres.createDatabase('outage');
  const errors: Error[] = [];
  const pool = openPool(url, { onError: (error) => errors.push(error) });
  try {
    await migratePostgres(pool, url);
    await pool.query("INSERT INTO events (at, session, type, data) VALUES (1700000000000, 7, 'x', '{}')");
    await postgres.halt();
    const refused = await pool.query('SELECT 1').catch((caught: unknown) => caught);
    assert.instance(refused, Error, 'a query fails while PostgreSQL is down');
    await postgres.start();
    const rows = await pool.query('SELECT at, session FROM events');
    assert.equal(rows.rows, [{ at: 1700000000000, session: 7 }]);
  } finally {
    await pool.end();
  }
});

test.run();
