/**
 * PostgreSQL stopped and started again under load: the nodes refuse what they cannot record (ERROR
 * history-unavailable, never an image whose event is not committed), report themselves down on their health check
 * so that HAProxy stops sending them clients, and recover by themselves once PostgreSQL is back; afterwards every
 * image a client received in full is on record.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { type Cluster, closedOnRecord, loadImages, sessionNamed, startCluster } from './helpers/cluster.ts';
import { eventually, makeTemporaryFolder } from './helpers/test-server.ts';

let cluster: Cluster;

/** One tier whose quota no run uses up: the load goes on until the test stops it. */
const TIERS = [{ from: 100, to: 999, tier: 'platinum', quota: 1_000_000, canReadUsage: true }];

test.before(async () => {
  const folder = makeTemporaryFolder('imgcache-tiers-');
  writeFileSync(path.join(folder, 'tiers.json'), JSON.stringify(TIERS));
  cluster = await startCluster({ args: ['--capacity', '6', '--tiers', path.join(folder, 'tiers.json')] });
});

// uvu loses a test's failure when an after.each hook throws too: a cleanup that fails says so and lets it be seen
test.after.each(async () => {
  await cluster.closeClients().catch((error: Error) => console.error(`cleanup after the test: ${error.message}`));
});

test.after(async () => {
  await cluster?.stop();
});

test('PostgreSQL stopped and restarted under load: refusals, health down, recovery by itself, nothing missing', async () => {
  let restarted: () => void = () => {};
  const back = new Promise<void>((resolve) => {
    restarted = resolve;
  });
  const clients = await Promise.all([1, 2, 3].map(() => cluster.connect()));
  const stopped = { now: false };
  const loads = clients.map((client) =>
    loadImages(client, ['sunset.png'], stopped, { tries: 5_000, afterRefusal: back }),
  );
  await cluster.waitForHistory(
    (events) => events.filter((event) => event.type === 'image-served').length >= 3,
    'images served before the outage',
  );

  await cluster.postgres.halt();
  for (const node of cluster.nodes) {
    await cluster.haproxy.waitForLine(new RegExp(`${node.name} is DOWN`), `HAProxy taking ${node.name} out`, 15_000);
    assert.is(await node.health(), 503, `${node.name} says it is down`);
  }
  await eventually(
    () => loads.every((load) => load.refused.length > 0),
    'every loaded client refused during the outage',
    15_000,
  );
  const refusals = loads.flatMap((load) => load.refused);
  assert.ok(
    refusals.every((code) => code === 'history-unavailable' || code === 'closed'),
    `refused for want of a history: ${refusals}`,
  );

  await cluster.postgres.start();
  restarted();
  for (const node of cluster.nodes) {
    await cluster.haproxy.waitForLine(new RegExp(`${node.name} is UP`), `HAProxy taking ${node.name} back`, 15_000);
    assert.is(await node.health(), 200, `${node.name} says it is up again`);
  }
  const newcomer = await cluster.connect();
  await downloadImage(newcomer, 'sunset.png', makeTemporaryFolder('imgcache-client-'));
  stopped.now = true;
  await Promise.all(loads.map((load) => load.done));

  await Promise.all([newcomer, ...clients].filter((client) => !client.closed).map((client) => client.exit()));

  // nothing missing afterwards: every image a client received in full is on record, and every session of the test
  // is closed on record, once
  const names = [...clients, newcomer].map((client) => client.welcome.session.name);
  const history = await cluster
    .waitForHistory((events) => names.every((name) => closedOnRecord(events, name)), 'every session closed')
    .catch(() => cluster.events());
  for (const load of [...loads, { client: newcomer, received: ['sunset.png'] }]) {
    const session = sessionNamed(history, load.client.welcome.session.name);
    const served = history.filter((event) => event.type === 'image-served' && event.session === session);
    assert.ok(
      served.length >= load.received.length,
      `${load.client.welcome.session.name}: ${load.received.length} received, ${served.length} on record`,
    );
  }
  for (const client of [...clients, newcomer]) {
    const { name } = client.welcome.session;
    const session = sessionNamed(history, name);
    const closes = history.filter((event) => event.type === 'session-closed' && event.session === session);
    const reasons = closes.map((close) => String(close.data.reason));
    assert.is(closes.length, 1, `${name} closed on record once (${reasons.join(', ') || 'never'})`);
    // a session refused for want of a history ([P-26]: a fatal ERROR history-unavailable) is closed for that reason
    const refused = loads.find((load) => load.client === client && load.refused.length > 0);
    if (refused) assert.equal(reasons, ['history-unavailable'], `${name}'s close says why`);
  }
  const lost = history.filter((event) => event.type === 'node-lost').map((event) => String(event.data.node));
  assert.equal(lost, [], 'no node is declared lost for an outage of PostgreSQL: every node lived through it');
});

test('PostgreSQL stopped under an idle cluster: every node down on its health check at once, then up, none lost', async () => {
  const before = (await cluster.events()).length;
  // no client to fail a record: the nodes see the outage by themselves (their heartbeats), and HAProxy takes them out
  const down = cluster.nodes.map((node) =>
    cluster.haproxy.waitForNextLine(new RegExp(`${node.name} is DOWN`), `HAProxy taking ${node.name} out`, 5_000),
  );
  await cluster.postgres.halt();
  await Promise.all(down);
  for (const node of cluster.nodes) assert.is(await node.health(), 503, `${node.name} says it is down`);
  const up = cluster.nodes.map((node) =>
    cluster.haproxy.waitForNextLine(new RegExp(`${node.name} is UP`), `HAProxy taking ${node.name} back`, 5_000),
  );
  await cluster.postgres.start();
  await Promise.all(up);
  for (const node of cluster.nodes) assert.is(await node.health(), 200, `${node.name} says it is up again`);
  const client = await cluster.connect();
  assert.ok(client.welcome.session.name, 'a client is admitted again');
  const after = (await cluster.events()).slice(before);
  assert.equal(
    after.filter((event) => event.type === 'node-lost'),
    [],
    'no node is declared lost for an outage of PostgreSQL',
  );
});

test.run();
