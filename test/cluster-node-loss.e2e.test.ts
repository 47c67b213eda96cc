/**
 * A node killed under load (SIGKILL: no goodbye, no last commit): the surviving nodes declare it lost once its
 * heartbeat is older than --node-lost-after-ms, close its sessions on record with the reason node-lost and free
 * their slots; HAProxy's health check takes it out; every image a client received in full is on record.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ImgcacheClient } from '../client/imgcache-client.ts';
import { RejectedError } from '../src/protocol/index.ts';
import { type Cluster, type ClusterEvent, loadImages, sessionNamed, startCluster } from './helpers/cluster.ts';

const HEARTBEAT_MS = 200;
const LOST_AFTER_MS = 1_000;
const CAPACITY = 6;
const IMAGES = ['mandelbrot.png', 'terrain-large.png', 'sunset.png'];

let cluster: Cluster;

test.before(async () => {
  cluster = await startCluster({
    heartbeatMs: HEARTBEAT_MS,
    lostAfterMs: LOST_AFTER_MS,
    args: ['--capacity', String(CAPACITY), '--codes', '950'], // platinum: 20 images a session
  });
});

// uvu loses a test's failure when an after.each hook throws too: a cleanup that fails says so and lets it be seen
test.after.each(async () => {
  await cluster.closeClients().catch((error: Error) => console.error(`cleanup after the test: ${error.message}`));
});

test.after(async () => {
  await cluster?.stop();
});

function servedIn(events: readonly ClusterEvent[], session: number | null): string[] {
  return events
    .filter((event) => event.type === 'image-served' && event.session === session)
    .map((event) => String(event.data.image));
}

test('a node killed under load: its sessions closed on record (node-lost) in time, its slots freed, every image received on record', async () => {
  const clients = await Promise.all(Array.from({ length: CAPACITY }, () => cluster.connect()));
  const stopped = { now: false };
  const loads = clients.map((client) => loadImages(client, IMAGES, stopped, { tries: 20 }));
  const victim = cluster.nodes[1];
  if (!victim) throw new Error('three nodes');
  // under load: the victim has served images already
  const before = await cluster.waitForHistory(
    (events) => events.some((event) => event.type === 'image-served' && event.node === victim.name),
    `${victim.name} serving images`,
  );
  const victimSessions = before
    .filter((event) => event.type === 'session-admitted' && event.node === victim.name)
    .map((event) => event.session);
  assert.ok(victimSessions.length >= 1, 'the victim holds sessions');
  const killedAt = Date.now();
  await victim.kill();

  const history = await cluster.waitForHistory(
    (events) =>
      victimSessions.every((session) =>
        events.some(
          (event) => event.type === 'session-closed' && event.session === session && event.data.reason === 'node-lost',
        ),
      ) && events.some((event) => event.type === 'node-lost'),
    `the sessions of ${victim.name} closed as node-lost`,
    LOST_AFTER_MS + 10_000,
  );
  const lost = history.find((event) => event.type === 'node-lost') as ClusterEvent;
  assert.is(lost.data.node, victim.name);
  assert.ok(lost.node !== victim.name, 'a surviving node recorded it');
  const tookMs = lost.at - killedAt;
  assert.ok(tookMs >= LOST_AFTER_MS - HEARTBEAT_MS, `not declared lost before its time (${tookMs} ms)`);
  assert.ok(tookMs <= LOST_AFTER_MS + 5_000, `declared lost in bounded time (${tookMs} ms)`);
  const held = await cluster.slotsHeld();
  assert.ok(!held.some((session) => victimSessions.includes(session)), 'its slots are freed with its closes');

  // HAProxy's health check takes the dead node out; its slots are free for new clients on the others
  await cluster.haproxy.waitForLine(new RegExp(`${victim.name} is DOWN`), 'HAProxy taking the node out');
  stopped.now = true;
  await Promise.all(loads.map((load) => load.done));
  const survivors = loads.filter((load) => !load.client.closed);
  assert.is(survivors.length, CAPACITY - victimSessions.length, 'the clients of the other nodes are still served');
  const newcomers: ImgcacheClient[] = [];
  for (let index = 0; index < victimSessions.length; index++) {
    newcomers.push(await cluster.connect());
  }
  const over = await cluster.connect().then(
    () => null,
    (error: unknown) => error,
  );
  assert.instance(over, RejectedError, 'the capacity still holds');
  assert.is((over as RejectedError).reject.reason, 'server-full');

  // the promise: every image a client received in full is on record in its session
  const final = await cluster.events();
  for (const load of loads) {
    const session = sessionNamed(final, load.client.welcome.session.name);
    const served = servedIn(final, session);
    for (const [index, image] of load.received.entries()) {
      assert.is(served[index], image, `${load.client.welcome.session.name}'s image ${index + 1} is on record`);
    }
  }
  await Promise.all([...survivors.map((load) => load.client), ...newcomers].map((client) => client.exit()));
});

test.run();
