/**
 * The seed report's five test cases ("Test Cases" 1 to 5) against a cluster: three nodes on one PostgreSQL history,
 * behind HAProxy in TCP mode with PROXY protocol v2, every client connecting to HAProxy. Each node hands out the
 * codes 108 (bronze) and 950 (platinum) in turn.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ImgcacheClient } from '../client/imgcache-client.ts';
import { type Cluster, closedOnRecord, connectWithTier, sessionNamed, startCluster, until } from './helpers/cluster.ts';
import {
  bronzeGetsOneAndIsRefusedUsage,
  downloadEverySample,
  fourthIsRejected,
  platinumReadsBronzeUsage,
  SAMPLE_NAMES,
  sixGetsOnThreeImages,
} from './helpers/seed-steps.ts';
import { eventually, makeTemporaryFolder } from './helpers/test-server.ts';

const TIER_OF_CODE: Record<number, string> = { 108: 'bronze', 950: 'platinum' };

let cluster: Cluster;

test.before(async () => {
  cluster = await startCluster({ args: ['--codes', '108,950', '--capacity', '3'] });
});

// uvu loses a test's failure when an after.each hook throws too: a cleanup that fails says so and lets it be seen
test.after.each(async () => {
  await cluster.closeClients().catch((error: Error) => console.error(`cleanup after the test: ${error.message}`));
});

test.after(async () => {
  await cluster?.stop();
});

/** The node that recorded each session's admission. */
async function nodesOf(names: string[]): Promise<string[]> {
  const admitted = await cluster.events("type = 'session-admitted'");
  return names.map((name) => admitted.find((event) => event.data.name === name)?.node ?? 'none');
}

test('cluster seed 1 (testClientServer): three concurrent clients through HAProxy list the images and exit, one per node', async () => {
  // HAProxy sends no client to a node its health check has not passed yet (a loaded machine can be slow to answer)
  await eventually(
    async () => [...(await cluster.haproxy.serverStates()).values()].filter((state) => state === 'UP').length === 3,
    'HAProxy sees the three nodes up',
    15_000,
  );
  const clients = await Promise.all([1, 2, 3].map(() => cluster.connect()));
  const names = clients.map((client) => client.welcome.session.name);
  assert.is(new Set(names).size, 3, 'each client has its own name');
  const lists = await Promise.all(clients.map((client) => client.list()));
  for (const list of lists) {
    assert.equal(
      list.images.map((image) => image.name),
      SAMPLE_NAMES,
    );
    assert.is(list.session.tier, TIER_OF_CODE[list.session.code]);
  }
  assert.is(new Set(await nodesOf(names)).size, 3, 'HAProxy (leastconn) spread them over the three nodes');
  await Promise.all(clients.map((client) => client.exit()));
  assert.ok(clients.every((client) => client.closed));
});

test('cluster seed 2 (testMaxClient): the fourth concurrent client is rejected server-full across the nodes [P-9]', async () => {
  const admitted = await Promise.all([1, 2, 3].map(() => cluster.connect()));
  await fourthIsRejected(() => cluster.connect());
  // Once a slot frees (the close on record, then the slot released in the cluster's table), a new client gets in,
  // whichever node it lands on.
  const leaving = admitted[0] as ImgcacheClient;
  await leaving.exit();
  const history = await cluster.waitForHistory(
    (events) => closedOnRecord(events, leaving.welcome.session.name),
    'the close of the client that left',
  );
  const session = sessionNamed(history, leaving.welcome.session.name);
  await until(async () => !(await cluster.slotsHeld()).includes(session as number), 'its slot released');
  const late = await cluster.connect();
  assert.ok(late.welcome.session.name);
  await Promise.all([late, ...admitted.slice(1)].map((client) => client.exit()));
});

test('cluster seed 3 (testImageCache): every sample image arrives byte-identical through HAProxy', async () => {
  const folder = makeTemporaryFolder('imgcache-client-');
  const client = await connectWithTier(cluster, 'platinum');
  await downloadEverySample(client, folder);
  await client.exit();
});

test('cluster seed 4 (testQuota): code 108 gets three images of six, the fourth is refused and the node closes [P-21]', async () => {
  const folder = makeTemporaryFolder('imgcache-client-');
  const client = await connectWithTier(cluster, 'bronze');
  assert.equal(client.welcome.session.code, 108);
  await sixGetsOnThreeImages(client, folder);
});

test('cluster seed 5 (testPlatinumUser): platinum on one node reads what bronze did on another [P-22]', async () => {
  const folder = makeTemporaryFolder('imgcache-client-');
  const bronze = await connectWithTier(cluster, 'bronze');
  await bronzeGetsOneAndIsRefusedUsage(bronze, folder);
  const platinum = await connectWithTier(cluster, 'platinum');
  const [bronzeNode, platinumNode] = await nodesOf([bronze.welcome.session.name, platinum.welcome.session.name]);
  assert.is.not(bronzeNode, platinumNode, 'the two sessions are on two nodes (leastconn)');
  await platinumReadsBronzeUsage(platinum, bronze.welcome.session.name);
  await Promise.all([bronze.exit(), platinum.exit()]);
});

test.run();
