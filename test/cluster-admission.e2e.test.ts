/**
 * One set of rules for the whole cluster: three nodes on one PostgreSQL history behind HAProxy hold one capacity
 * under a burst of simultaneous connections, give names unique across the nodes, and hold a registered client's
 * quota and session limit across nodes. Mixed access: anonymous clients and keyed ones.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import type { ImgcacheClient } from '../client/imgcache-client.ts';
import { MessageType, parseJsonBody, RejectedError, ServerError } from '../src/protocol/index.ts';
import { type Cluster, closedOnRecord, sessionNamed, startCluster } from './helpers/cluster.ts';
import { runCommand, SERVER_BIN } from './helpers/processes.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

let cluster: Cluster;

test.before(async () => {
  cluster = await startCluster({
    args: [
      '--capacity',
      '3',
      '--access',
      'mixed',
      '--anonymous-tier',
      'bronze',
      '--max-sessions-per-identity',
      '2',
      // the burst comes from one address (127.0.0.1, relayed by HAProxy): the per-address handshake limit is not
      // what this file tests
      '--max-handshakes-per-address',
      '64',
    ],
  });
});

// uvu loses a test's failure when an after.each hook throws too: a cleanup that fails says so and lets it be seen
test.after.each(async () => {
  await cluster.closeClients().catch((error: Error) => console.error(`cleanup after the test: ${error.message}`));
});

test.after(async () => {
  await cluster?.stop();
});

test("50 simultaneous connections over three nodes, capacity 3: exactly 3 welcomes, every rejection on record with the client's address [P-87]", async () => {
  const before = (await cluster.events()).length;
  const peers = await Promise.all(Array.from({ length: 50 }, () => RawConnection.open(cluster.port)));
  // each client's own address as it connected (read now: a closed socket no longer tells)
  const clientAddresses = new Set(peers.map((peer) => `127.0.0.1:${peer.socket.localPort}`));
  try {
    for (const peer of peers) peer.hello();
    const answers = await Promise.all(peers.map((peer) => peer.next()));
    const welcomes = answers.filter((frame) => frame?.type === MessageType.WELCOME);
    const rejects = answers.filter((frame) => frame?.type === MessageType.REJECT);
    assert.is(welcomes.length, 3, 'exactly the capacity is admitted');
    assert.is(rejects.length, 47, 'every other connection is told so');
    for (const frame of rejects) {
      assert.is(parseJsonBody(frame?.body ?? Buffer.alloc(0)).reason, 'server-full');
    }
    const history = await cluster.waitForHistory(
      (events) =>
        events.slice(before).filter((event) => event.type === 'connection-rejected').length >= 47 &&
        events.slice(before).filter((event) => event.type === 'session-admitted').length >= 3,
      '3 admissions and 47 rejections',
    );
    const burst = history.slice(before);
    const rejected = burst.filter((event) => event.type === 'connection-rejected');
    assert.is(rejected.length, 47);
    assert.ok(
      rejected.every((event) => event.data.reason === 'server-full'),
      'each rejection is recorded as server-full',
    );
    // [P-87] the recorded remote is the client's own address and port, as HAProxy's PROXY header names it (without
    // the header a node would see HAProxy's outgoing port)
    const records = burst.filter((event) => event.type === 'connection-rejected' || event.type === 'session-admitted');
    const strangers = records
      .map((event) => String(event.data.remote))
      .filter((remote) => !clientAddresses.has(remote));
    assert.equal(strangers, [], "each record names the client's own address and port, from the PROXY header");
    assert.is(burst.filter((event) => event.type === 'session-admitted').length, 3);
    assert.ok(new Set(burst.map((event) => event.node)).size >= 2, 'the burst was spread over the nodes');
  } finally {
    for (const peer of peers) peer.destroy();
  }
  await cluster.waitForHistory(
    (events) => events.slice(before).filter((event) => event.type === 'session-closed').length >= 3,
    'the three sessions closed',
  );
});

test('names are unique across the nodes: client-<n> from one sequence', async () => {
  for (let round = 0; round < 3; round++) {
    const clients = await Promise.all([1, 2, 3].map(() => cluster.connect()));
    await Promise.all(clients.map((client) => client.exit()));
    await cluster.closeClients(); // their closes on record: their slots are free
  }
  const admitted = (await cluster.events()).filter((event) => event.type === 'session-admitted');
  const names = admitted.map((event) => String(event.data.name));
  assert.ok(names.length >= 12);
  assert.is(new Set(names).size, names.length, 'no name given twice');
  assert.is(new Set(admitted.map((event) => event.session)).size, admitted.length, 'no session number twice');
  assert.is(new Set(admitted.map((event) => event.node)).size, 3, 'every node named some of them');
  assert.ok(names.every((name) => /^client-\d+$/.test(name)));
});

/**
 * Registers `name` with the `clients` command on the cluster's history; resolves with its key once every node has
 * heard of it (NOTIFY, [P-86]): within a second.
 */
async function register(name: string, tier: string): Promise<string> {
  const added = await runCommand(SERVER_BIN, ['clients', 'add', name, '--tier', tier, '--history', cluster.history]);
  assert.is(added.status, 0, added.stderr);
  await cluster.waitForRegistry(name, 1_000);
  return added.stdout.trim();
}

/** Asks for `count` images one after the other; the outcome of each: served, or the code it was refused with. */
async function getImages(client: ImgcacheClient, count: number): Promise<string[]> {
  const folder = makeTemporaryFolder('imgcache-client-');
  const outcomes: string[] = [];
  for (let index = 0; index < count && !client.closed; index++) {
    try {
      await downloadImage(client, 'sunset.png', folder);
      outcomes.push('served');
    } catch (error) {
      outcomes.push(error instanceof ServerError ? error.body.code : 'closed');
    }
  }
  return outcomes;
}

test("a registered client's quota holds across two nodes used at once [P-64]", async () => {
  const key = await register('alice', 'bronze'); // 3 images a day
  const [one, two] = [cluster.nodes[0], cluster.nodes[1]];
  if (!one || !two) throw new Error('two nodes');
  const sessions = await Promise.all([
    cluster.connect({ port: await one.direct(), credential: key }),
    cluster.connect({ port: await two.direct(), credential: key }),
  ]);
  const outcomes = (await Promise.all(sessions.map((session) => getImages(session, 3)))).flat();
  assert.is(outcomes.filter((outcome) => outcome === 'served').length, 3, `3 served in all: ${outcomes}`);
  assert.ok(outcomes.includes('quota-exhausted'), 'the rest is refused');
  const history = await cluster.events();
  const numbers = sessions.map((session) => sessionNamed(history, session.welcome.session.name));
  const served = history.filter((event) => event.type === 'image-served' && numbers.includes(event.session));
  assert.is(served.length, 3, 'the three images on record');
  // a session refused quota-exhausted is closed by its node ([P-21]); the other one leaves
  for (const session of sessions) session.close();
  await cluster.closeClients();

  // a third node, later: the quota used on the other two is used here too
  const three = cluster.nodes[2];
  if (!three) throw new Error('three nodes');
  const later = await cluster.connect({ port: await three.direct(), credential: key });
  const welcomeRemaining = later.welcome.quota.remaining;
  assert.equal(await getImages(later, 1), ['quota-exhausted'], 'the third node refuses a fourth image');
  assert.is(welcomeRemaining, 0, "the third node's WELCOME says the quota is used up");
});

test("a registered client's session limit holds across nodes: a third session anywhere is refused [P-65]", async () => {
  const key = await register('bob', 'gold');
  const held = await Promise.all(
    cluster.nodes.slice(0, 2).map(async (node) => cluster.connect({ port: await node.direct(), credential: key })),
  );
  const third = cluster.nodes[2];
  if (!third) throw new Error('three nodes');
  const refused = await cluster.connect({ port: await third.direct(), credential: key }).then(
    () => null,
    (error: unknown) => error,
  );
  assert.instance(refused, RejectedError);
  assert.is((refused as RejectedError).reject.reason, 'too-many-sessions');
  await cluster.waitForHistory(
    (events) =>
      events.some((event) => event.type === 'connection-rejected' && event.data.reason === 'too-many-sessions'),
    'the refusal on record',
  );
  await Promise.all(held.map((session) => session.exit()));
});

test("a revocation reaches every node within a second and closes the client's sessions on each [P-66] [P-86]", async () => {
  const key = await register('carol', 'gold');
  const [one, two] = cluster.nodes;
  if (!one || !two) throw new Error('two nodes');
  const sessions = await Promise.all([
    cluster.connect({ port: await one.direct(), credential: key }),
    cluster.connect({ port: await two.direct(), credential: key }),
  ]);
  const closed = sessions.map((session) => new Promise<void>((resolve) => session.once('close', () => resolve())));
  const revoked = await runCommand(SERVER_BIN, ['clients', 'revoke', 'carol', '--history', cluster.history]);
  assert.is(revoked.status, 0, revoked.stderr);
  await cluster.waitForRegistry('carol', 1_000, 'revoked');
  await Promise.all(closed);
  const history = await cluster.waitForHistory(
    (events) => sessions.every((session) => closedOnRecord(events, session.welcome.session.name)),
    "carol's sessions closed",
  );
  for (const session of sessions) {
    const number = sessionNamed(history, session.welcome.session.name);
    const close = history.find((event) => event.type === 'session-closed' && event.session === number);
    assert.is(close?.data.reason, 'identity-revoked', `${session.welcome.session.name} closed as revoked`);
  }
});

test.run();
