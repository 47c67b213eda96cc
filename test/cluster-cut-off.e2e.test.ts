/**
 * [P-83] A node cut off from PostgreSQL only (its clients still reach it), for longer than --node-lost-after-ms: the
 * others declare it lost and record the closes of its sessions (`node-lost`). Sessions that ended on it meanwhile
 * (a get refused history-unavailable, an exit) left closes it held; when it reaches PostgreSQL again it ends the
 * sessions still open, commits what it held, and registers anew. Every session is closed on record once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ServerError } from '../src/protocol/index.ts';
import { type Cluster, type ClusterEvent, sessionNamed, startCluster } from './helpers/cluster.ts';
import { eventually, makeTemporaryFolder } from './helpers/test-server.ts';

const HEARTBEAT_MS = 200;
const LOST_AFTER_MS = 1_000;

let cluster: Cluster;

test.before(async () => {
  cluster = await startCluster({
    heartbeatMs: HEARTBEAT_MS,
    lostAfterMs: LOST_AFTER_MS,
    linkedToPostgres: ['node-3'],
    args: ['--capacity', '6', '--codes', '950'], // platinum: 20 images a session
  });
});

// uvu loses a test's failure when an after.each hook throws too: a cleanup that fails says so and lets it be seen
test.after.each(async () => {
  await cluster.closeClients().catch((error: Error) => console.error(`cleanup after the test: ${error.message}`));
});

test.after(async () => {
  await cluster?.stop();
});

/** The reasons of the session's closes on record, in their order. */
const closesOf = (events: readonly ClusterEvent[], session: number | null): string[] =>
  events.flatMap((event) =>
    event.type === 'session-closed' && event.session === session ? [String(event.data.reason)] : [],
  );

test('[P-83] a node cut off from PostgreSQL only, declared lost, then back: every session closed on record once', async () => {
  const cut = cluster.nodes[2];
  if (!cut?.postgresLink) throw new Error('node-3 reaches PostgreSQL through a link');
  const link = cut.postgresLink;
  const port = await cut.direct();
  const folder = makeTemporaryFolder('imgcache-client-');
  const [open, refused, leaving] = await Promise.all([1, 2, 3].map(() => cluster.connect({ port })));
  if (!open || !refused || !leaving) throw new Error('three sessions');
  for (const client of [open, refused, leaving]) await downloadImage(client, 'sunset.png', folder);
  const names = [open, refused, leaving].map((client) => client.welcome.session.name);
  const before = await cluster.waitForHistory(
    (events) => names.every((name) => sessionNamed(events, name) !== null),
    'the three sessions admitted',
  );
  const sessions = names.map((name) => sessionNamed(before, name));

  await link.cut();
  await eventually(async () => (await cut.health()) === 503, `${cut.name} down on its health check`);
  // Two sessions end on the node while it cannot record: their closes are held.
  const error = await downloadImage(refused, 'sunset.png', folder).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  assert.instance(error, ServerError);
  assert.is((error as ServerError).body.code, 'history-unavailable');
  await leaving.exit();
  // The others declare it lost and close its three sessions on record.
  const declared = await cluster.waitForHistory(
    (events) =>
      events.some((event) => event.type === 'node-lost' && event.data.node === cut.name) &&
      sessions.every((session) => closesOf(events, session).length > 0),
    `${cut.name} declared lost, its sessions closed`,
    LOST_AFTER_MS + 10_000,
  );
  for (const session of sessions) assert.equal(closesOf(declared, session), ['node-lost']);

  await link.restore();
  // Back: the session still open ends at once, the node commits the closes it held and registers anew.
  await eventually(() => open.closed, 'the open session ended by its node', 10_000);
  await eventually(
    () =>
      sessions
        .slice(1)
        .every((session) => cut.logs.some((entry) => entry.msg === 'session-closed' && entry.session === session)),
    `${cut.name} done with the closes it held`,
    10_000,
  );
  await eventually(async () => (await cut.health()) === 200, `${cut.name} up again`, 10_000);
  const after = await cluster.events();
  for (const [index, session] of sessions.entries()) {
    assert.equal(closesOf(after, session), ['node-lost'], `${names[index]} closed on record once`);
  }
  const again = await cluster.connect({ port });
  assert.ok(again.welcome.session.name, `${cut.name} admits clients again`);
});

test.run();
