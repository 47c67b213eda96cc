/**
 * [P-82] [P-83] [P-85] What the nodes of a cluster share, on a real PostgreSQL: the slot gate under simultaneous claims
 * from several nodes, the keyed quota's reservations, and a lost node's sessions closed on record.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { beatHeart, closeLostNodes, registerNode } from '../db/postgres/cluster-nodes.ts';
import { giveBackQuotaImage, quotaUsed, reserveQuotaImage } from '../db/postgres/cluster-quota.ts';
import { claimClusterSlot, releaseClusterSlots } from '../db/postgres/cluster-slots.ts';
import { openPool, type Pool } from '../db/postgres/pool.ts';
import { migratePostgres } from '../db/postgres/schema.ts';
import { PostgresCoordinator } from '../src/cluster/postgres-coordinator.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { eventually } from './helpers/test-server.ts';

let postgres: PostgresInstance;
const pools: Pool[] = [];
let databases = 0;

/** A fresh, migrated database, and one pool per node on it. */
async function cluster(nodes: number): Promise<{ url: string; pools: Pool[] }> {
  const url = await postgres.createDatabase(`cluster_${++databases}`);
  const opened = Array.from({ length: nodes }, () => openPool(url, { max: 4 }));
  pools.push(...opened);
  await migratePostgres(opened[0] as Pool, url);
  return { url, pools: opened };
}

test.before(async () => {
  postgres = await startPostgres();
});

test.after(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await postgres?.stop();
});

const limits = { capacity: 3, maxSessionsPerIdentity: 1 };

test('[P-82] 50 claims at once from three nodes: exactly 3 slots taken, the rest refused server-full', async () => {
  const { pools: nodes } = await cluster(3);
  const verdicts = await Promise.all(
    Array.from({ length: 50 }, (_, index) =>
      claimClusterSlot(
        nodes[index % 3] as Pool,
        { session: index + 1, node: `n${index % 3}`, identity: undefined },
        limits,
      ),
    ),
  );
  assert.is(verdicts.filter((verdict) => verdict.kind === 'claimed').length, 3);
  for (const verdict of verdicts.filter((verdict) => verdict.kind === 'refused')) {
    assert.equal(verdict, { kind: 'refused', reason: 'server-full', occupancy: { open: 3, capacity: 3 } });
  }
  const { rows } = await (nodes[0] as Pool).query('SELECT count(*)::int AS open FROM open_sessions');
  assert.is(rows[0].open, 3);
});

test('[P-82] [P-65] an identity holds one session across nodes; a released slot is free again', async () => {
  const { pools: nodes } = await cluster(2);
  const [a, b] = nodes as [Pool, Pool];
  const claims = await Promise.all([
    claimClusterSlot(a, { session: 1, node: 'a', identity: 'acme' }, limits),
    claimClusterSlot(b, { session: 2, node: 'b', identity: 'acme' }, limits),
  ]);
  assert.equal(claims.map((claim) => claim.kind).sort(), ['claimed', 'refused']);
  const refused = claims.find((claim) => claim.kind === 'refused');
  assert.is(refused?.kind === 'refused' && refused.reason, 'too-many-sessions');
  const winner = claims[0]?.kind === 'claimed' ? 1 : 2;
  await releaseClusterSlots(a, [winner]);
  assert.is((await claimClusterSlot(b, { session: 3, node: 'b', identity: 'acme' }, limits)).kind, 'claimed');
});

test('[P-85] a keyed quota of 5 reserved 20 times at once from two nodes: exactly 5 images, given back one', async () => {
  const { pools: nodes } = await cluster(2);
  const window = { identity: 'acme', start: 1_700_000_000_000 };
  const outcomes = await Promise.all(
    Array.from({ length: 20 }, (_, index) => reserveQuotaImage(nodes[index % 2] as Pool, window, 5)),
  );
  assert.is(outcomes.filter((outcome) => outcome.reserved).length, 5);
  assert.equal(
    outcomes
      .filter((outcome) => outcome.reserved)
      .map((outcome) => outcome.used)
      .sort(),
    [1, 2, 3, 4, 5],
  );
  for (const outcome of outcomes.filter((outcome) => !outcome.reserved)) assert.is(outcome.used, 5);
  await giveBackQuotaImage(nodes[1] as Pool, window);
  assert.is(await quotaUsed(nodes[0] as Pool, window), 4);
  assert.equal(await reserveQuotaImage(nodes[0] as Pool, window, 5), { reserved: true, used: 5 });
  // another window (the period turned) starts from zero
  assert.equal(await reserveQuotaImage(nodes[0] as Pool, { ...window, start: window.start + 1 }, 5), {
    reserved: true,
    used: 1,
  });
});

test('[P-83] a lost node: its admitted sessions closed on record (node-lost), its slots freed, once', async () => {
  const { pools: nodes } = await cluster(2);
  const [lost, survivor] = nodes as [Pool, Pool];
  await registerNode(lost, 'lost', 1);
  await registerNode(survivor, 'survivor', 1);
  for (const session of [11, 12, 13]) {
    await claimClusterSlot(lost, { session, node: 'lost', identity: undefined }, limits);
  }
  // 11 admitted and open, 12 admitted and closed already (its release not yet through), 13 never admitted on record
  await lost.query(
    `INSERT INTO events (at, session, type, data, node) VALUES
       (1, 11, 'session-admitted', '{}', 'lost'), (1, 12, 'session-admitted', '{}', 'lost'),
       (2, 12, 'session-closed', '{"reason":"client-closed"}', 'lost')`,
  );
  assert.equal(await closeLostNodes(survivor, 'survivor', 60_000, 5), [], 'a node beating recently is not lost');
  await lost.query(`UPDATE nodes SET heartbeat_at = now() - interval '10 seconds' WHERE node = 'lost'`);
  const [first, second] = await Promise.all([
    closeLostNodes(survivor, 'survivor', 5_000, 5),
    closeLostNodes(survivor, 'survivor', 5_000, 5),
  ]);
  const recorded = [...(first ?? []), ...(second ?? [])];
  assert.equal(
    recorded.map(({ session, type, data }) => ({ session, type, reason: (data as { reason?: string }).reason })),
    [
      { session: 11, type: 'session-closed', reason: 'node-lost' },
      { session: null, type: 'node-lost', reason: undefined },
    ],
  );
  const { rows } = await survivor.query(
    `SELECT session, type, data, node FROM events WHERE position > 3 ORDER BY position`,
  );
  assert.equal(rows[0], {
    session: 11,
    type: 'session-closed',
    data: '{"reason":"node-lost","node":"lost"}',
    node: 'survivor',
  });
  assert.is(rows[1].type, 'node-lost');
  assert.is(JSON.parse(rows[1].data).sessions, 1);
  const slots = await survivor.query('SELECT count(*)::int AS open FROM open_sessions');
  assert.is(slots.rows[0].open, 0);
  // The lost node, back, finds its row gone (it must end its sessions), and registers anew.
  assert.is(await beatHeart(lost, 'lost'), false);
  await registerNode(lost, 'lost', 6);
  assert.is(await beatHeart(lost, 'lost'), true);
});

test('[P-82] a node restarted under its name frees the slots its earlier run held', async () => {
  const { pools: nodes } = await cluster(1);
  const [pool] = nodes as [Pool];
  await registerNode(pool, 'edge-1', 1);
  await claimClusterSlot(pool, { session: 64, node: 'edge-1', identity: undefined }, limits);
  await registerNode(pool, 'edge-1', 2);
  const { rows } = await pool.query('SELECT count(*)::int AS open FROM open_sessions');
  assert.is(rows[0].open, 0);
});

test('a node whose heartbeat fails while PostgreSQL is down is told when a heartbeat reaches it again, once', async () => {
  const {
    url,
    pools: [pool],
  } = await cluster(1);
  const problems: string[] = [];
  let reachable = 0;
  const node = await PostgresCoordinator.start({
    pool: pool as Pool,
    url,
    node: 'a',
    ...limits,
    retryAfterMs: 1_000,
    heartbeatMs: 50,
    lostAfterMs: 1_000,
    now: Date.now,
    onRecorded: () => {},
    onLostSelf: () => {},
    onRegistryChange: () => {},
    onProblem: (_error, what) => problems.push(what),
    onReachable: () => reachable++,
  });
  try {
    await postgres.halt();
    try {
      await eventually(() => problems.filter((what) => what === 'heartbeat').length >= 2, 'heartbeats failing');
      assert.is(reachable, 0);
    } finally {
      await postgres.start();
    }
    await eventually(() => reachable === 1, 'told the history is reachable again');
    // two heartbeats more reach the history: said once, not at each
    const beats = new Set<string>();
    await eventually(async () => {
      const { rows } = await (pool as Pool).query("SELECT heartbeat_at::text AS at FROM nodes WHERE node = 'a'");
      beats.add(String(rows[0]?.at));
      return beats.size >= 3;
    }, 'two more heartbeats');
    assert.is(reachable, 1);
  } finally {
    await node.close();
  }
});

test.run();
