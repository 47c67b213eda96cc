/** [P-86] The registry listener of a node, on a real PostgreSQL: a change heard at once, and after an outage. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listenForRegistry } from '../db/postgres/cluster-registry-listener.ts';
import { changeRegistry } from '../db/postgres/history-store.ts';
import { openPool, type Pool } from '../db/postgres/pool.ts';
import { migratePostgres } from '../db/postgres/schema.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { within } from './helpers/within.ts';

let postgres: PostgresInstance;
let pool: Pool | undefined;

test.before(async () => {
  postgres = await startPostgres();
});

test.after(async () => {
  await pool?.end();
  await postgres?.stop();
});

test('[P-86] the registry listener hears a change at once, and again after PostgreSQL comes back', async () => {
  const url = await postgres.createDatabase('listener');
  pool = openPool(url, { max: 2 });
  await migratePostgres(pool, url);
  const writer = pool;
  let heard = 0;
  let onHeard: (() => void) | null = null;
  const next = () =>
    new Promise<void>((resolve) => {
      onHeard = resolve;
    });
  const listener = listenForRegistry({
    url,
    retryMs: 50,
    onChange: () => {
      heard++;
      onHeard?.();
    },
  });
  try {
    await listener.ready;
    assert.is(heard, 1, 'a (re)connection reads the registry');
    const change = next();
    const started = performance.now();
    const keyHash = 'a'.repeat(64);
    await changeRegistry(writer, () => [
      { type: 'client-registered', data: { name: 'acme', tier: 'gold', keyId: 'k1', keyHash } },
    ]);
    await within(change, 'the NOTIFY');
    assert.ok(performance.now() - started < 1_000, 'within a second');
    const back = next();
    await postgres.restart();
    await within(back, 'the listener reconnected', 15_000);
    const afterOutage = next();
    await changeRegistry(writer, () => [{ type: 'client-revoked', data: { name: 'acme' } }]).catch(async () =>
      // the pool's idle clients died with the restart: the first query may fail once
      changeRegistry(writer, () => [{ type: 'client-revoked', data: { name: 'acme' } }]),
    );
    await within(afterOutage, 'the NOTIFY after the outage');
  } finally {
    await listener.close();
  }
});

test.run();
