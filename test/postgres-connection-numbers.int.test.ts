/**
 * Connection numbers from the shared sequence, on a real PostgreSQL 15: nodes taking numbers at once never take the
 * same one, a burst past a block goes on without waiting, and a node cut off from PostgreSQL for long enough to use
 * every number it holds refuses to number rather than guess.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConnectionNumbers, REFILL_RETRY_MS } from '../db/postgres/connection-numbers.ts';
import { openPool, type Pool } from '../db/postgres/pool.ts';
import { CONNECTION_NUMBER_BLOCK, migratePostgres } from '../db/postgres/schema.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { eventually } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

let postgres: PostgresInstance;
let pools: Pool[] = [];
let url: string;

test.before(async () => {
  postgres = await startPostgres();
  url = await postgres.createDatabase('numbers');
  pools = [openPool(url), openPool(url), openPool(url)];
  await migratePostgres(pools[0] as Pool, url);
});

test.after(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await postgres?.stop();
});

test('three nodes numbering at once, past several blocks each: every number is unique', async () => {
  const nodes = await Promise.all(pools.map((pool) => ConnectionNumbers.open(pool)));
  const taken = new Set<number>();
  for (let round = 0; round < 5 * CONNECTION_NUMBER_BLOCK; round++) {
    for (const node of nodes) {
      const number = node.next();
      assert.not.ok(taken.has(number), `number ${number} given twice`);
      taken.add(number);
    }
    // Each node goes on while its next block is on its way; here the test waits for it, as a server's accept path
    // would have, between bursts.
    if (round % 16 === 0) await Promise.all(nodes.map((node) => node.refilled()));
  }
  assert.is(taken.size, 15 * CONNECTION_NUMBER_BLOCK);
});

test('a burst of two blocks is numbered synchronously; the next block comes in the background', async () => {
  const node = await ConnectionNumbers.open(pools[0] as Pool);
  const first = node.peek();
  const burst = Array.from({ length: 2 * CONNECTION_NUMBER_BLOCK }, () => node.next());
  assert.is(new Set(burst).size, burst.length);
  assert.is(burst[0], first, 'peek says the next number');
  await within(node.refilled(), 'the next block');
  assert.ok(Number.isInteger(node.next()), 'a number once the next block has come');
});

/**
 * A node on a pool of its own (`watch` sees the pool first) that uses every number it holds while PostgreSQL is
 * stopped, and is refused the next; PostgreSQL is left stopped for the caller to start (started again on a failure).
 */
async function usedUpInAnOutage(
  watch: (pool: Pool) => void = () => {},
): Promise<{ node: ConnectionNumbers; problems: Error[] }> {
  const pool = openPool(url, { connectTimeoutMs: 500 });
  pools.push(pool);
  watch(pool);
  const problems: Error[] = [];
  const node = await ConnectionNumbers.open(pool, (error) => problems.push(error));
  await postgres.halt();
  try {
    for (let index = 0; index < 2 * CONNECTION_NUMBER_BLOCK; index++) node.next();
    assert.throws(() => node.next(), /no connection numbers left/);
  } catch (error) {
    await postgres.start();
    throw error;
  }
  return { node, problems };
}

test('cut off from PostgreSQL: numbers held are used, then numbering is refused, and comes back with PostgreSQL', async () => {
  const { node, problems } = await usedUpInAnOutage();
  await postgres.start();
  // A number asked for with none held starts a fetch and is refused; once that fetch is in, numbering goes on (a
  // fetch still failing from before PostgreSQL came back may need one more turn).
  const number = await within(
    (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return node.next();
        } catch (error) {
          if (attempt >= 10) throw error;
          await node.refilled();
        }
      }
    })(),
    'numbering again once PostgreSQL is back',
  );
  assert.ok(Number.isInteger(number));
  assert.ok(problems.length > 0, 'the failed fetches were told');
});

test('numbers used up in an outage: a block is fetched again once PostgreSQL is back, before any connection asks', async () => {
  let fetches = 0;
  const { node, problems } = await usedUpInAnOutage((pool) => {
    const query = pool.query.bind(pool);
    pool.query = ((...args: Parameters<typeof query>) => {
      fetches++;
      return query(...args);
    }) as typeof pool.query;
  });
  try {
    assert.is(node.held(), 0);
    // the outage lasts several tries, each made by the node itself and failing; the problem is told once
    const before = fetches;
    await eventually(() => fetches >= before + 3, 'the failed fetch tried again by itself', 5_000);
    assert.is(problems.length, 1, 'one problem told for the outage, not one per try');
  } finally {
    await postgres.start();
  }
  const back = Date.now();
  // No connection asks: the node fetches a block by itself, within a retry or two of PostgreSQL's return (well
  // before a node's health check says up, a second at least).
  await eventually(() => node.held() >= CONNECTION_NUMBER_BLOCK, 'a block held again', 5_000);
  const tookMs = Date.now() - back;
  assert.ok(tookMs < 1_000, `held again ${tookMs} ms after the return (a try every ${REFILL_RETRY_MS} ms)`);
  assert.ok(Number.isInteger(node.next()), 'the first connection after the outage gets its number');
});

test.run();
