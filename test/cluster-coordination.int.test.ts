/**
 * [P-82]-[P-86] Nodes of one cluster, each a real server on a real PostgreSQL: two or three started in this process
 * (each its own history connection, as separate machines have), and one as a child process to kill with SIGKILL.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NewEvent } from '../db/events.ts';
import { usageChunksOf } from '../db/history-backend.ts';
import { closeLostNodes } from '../db/postgres/cluster-nodes.ts';
import { changeRegistry } from '../db/postgres/history-store.ts';
import { openPool, type Pool } from '../db/postgres/pool.ts';
import { migratePostgres } from '../db/postgres/schema.ts';
import type { ServerConfig } from '../src/config.ts';
import { newClientKey } from '../src/identity/client-key.ts';
import { MessageType } from '../src/protocol/index.ts';
import { sequenceOfCodes } from '../src/server/code-source.ts';
import { type ImgcacheServer, startServer } from '../src/server/server.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { spawnServer } from './helpers/processes.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { eventually, type RecordedEvents, recordedEvents, SAMPLE_IMAGES } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

let postgres: PostgresInstance;
let databases = 0;
const cleanups: Array<() => Promise<unknown>> = [];

interface Node extends RecordedEvents {
  server: ImgcacheServer;
  port: number;
}

/** Short heartbeats, so that a lost node is seen in well under a second. */
const HEARTBEAT_MS = 100;
const LOST_AFTER_MS = 600;

async function history(): Promise<{ url: string; pool: Pool }> {
  const url = await postgres.createDatabase(`nodes_${++databases}`);
  const pool = openPool(url, { max: 2 });
  cleanups.push(() => pool.end());
  await migratePostgres(pool, url);
  return { url, pool };
}

async function startNode(url: string, name: string, options: Partial<ServerConfig> = {}): Promise<Node> {
  const recorded = recordedEvents();
  const server = await startServer(
    {
      host: '127.0.0.1',
      port: 0,
      cacheDir: SAMPLE_IMAGES,
      database: url,
      nodeName: name,
      nodeHeartbeatMs: HEARTBEAT_MS,
      nodeLostAfterMs: LOST_AFTER_MS,
      maxHandshakesPerAddress: 64,
      ...options,
    },
    { codeSource: sequenceOfCodes([108]), onRecorded: recorded.onRecorded },
  );
  cleanups.push(() => server.close());
  return { ...recorded, server, port: server.address.port };
}

/** The first frame the server sends after a HELLO (with `credential`, if given). */
async function hello(
  port: number,
  credential?: string,
): Promise<{ peer: RawConnection; type: number; body: Record<string, unknown> }> {
  const peer = await RawConnection.open(port);
  cleanups.push(async () => peer.destroy());
  peer.sendJson(MessageType.HELLO, { versions: [1], ...(credential === undefined ? {} : { credential }) });
  const frame = await peer.next();
  if (!frame) throw new Error('closed before the first frame');
  return { peer, type: frame.type, body: JSON.parse(frame.body.toString()) };
}

async function get(
  peer: RawConnection,
  id: number,
  image = 'sunset.png',
): Promise<{ type: number; body: Record<string, unknown> }> {
  peer.sendJson(MessageType.REQUEST, { id, command: 'get', image });
  const frame = await peer.next();
  if (!frame) throw new Error('closed before the answer');
  const body = JSON.parse(frame.body.toString());
  if (frame.type === MessageType.REPLY) await peer.readStream(id);
  return { type: frame.type, body };
}

async function rows(pool: Pool, sql: string): Promise<Array<Record<string, unknown>>> {
  return (await pool.query(sql)).rows;
}

/** Registers a client of tier `tier` as the `clients` command does, through a connection of its own. */
async function register(pool: Pool, name: string, tier = 'bronze'): Promise<string> {
  const { key, keyId, keyHash } = newClientKey();
  await changeRegistry(pool, () => [{ type: 'client-registered', data: { name, tier, keyId, keyHash } }]);
  return key;
}

test.before(async () => {
  postgres = await startPostgres();
});

test.after.each(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

test.after(async () => {
  await postgres?.stop();
});

test('[P-82] 50 simultaneous HELLOs over three nodes against capacity 3: exactly 3 WELCOMEs, every REJECT on record', async () => {
  const { url, pool } = await history();
  const nodes = await Promise.all(['a', 'b', 'c'].map((name) => startNode(url, name, { capacity: 3 })));
  const answers = await Promise.all(Array.from({ length: 50 }, (_, index) => hello((nodes[index % 3] as Node).port)));
  const welcomes = answers.filter((answer) => answer.type === MessageType.WELCOME);
  const rejects = answers.filter((answer) => answer.type === MessageType.REJECT);
  assert.is(welcomes.length, 3);
  assert.is(rejects.length, 47);
  for (const reject of rejects) {
    assert.is(reject.body.reason, 'server-full');
    assert.equal(reject.body.occupancy, { open: 3, capacity: 3 });
  }
  // Each REJECT is written once its record is committed: all 47 are in the history now.
  const rejected = await rows(pool, "SELECT session, data FROM events WHERE type = 'connection-rejected'");
  assert.is(rejected.length, 47);
  const admitted = await rows(
    pool,
    "SELECT session, data::json ->> 'name' AS name FROM events WHERE type = 'session-admitted'",
  );
  assert.is(admitted.length, 3);
  const numbers = [...rejected, ...admitted].map((row) => row.session);
  assert.is(new Set(numbers).size, 50, 'every connection has a number of its own across the nodes');
  assert.equal(
    welcomes.map((answer) => (answer.body.session as { name: string }).name).sort(),
    admitted.map((row) => row.name).sort(),
  );
  const slots = await rows(pool, 'SELECT count(*)::int AS open FROM open_sessions');
  assert.is(slots[0]?.open, 3);
});

test('[P-82] names are unique across nodes and restarts; a clean stop frees the node and its slots', async () => {
  const { url, pool } = await history();
  const a = await startNode(url, 'a');
  const b = await startNode(url, 'b');
  const names: string[] = [];
  for (const port of [a.port, b.port, a.port]) {
    const answer = await hello(port);
    names.push((answer.body.session as { name: string }).name);
    answer.peer.destroy();
  }
  await a.server.close();
  await within(
    b.waitForEvent((event) => event.type === 'session-closed' && event.session !== null),
    'b closes its own',
  );
  const again = await startNode(url, 'a');
  for (const port of [again.port, b.port]) {
    const answer = await hello(port);
    names.push((answer.body.session as { name: string }).name);
  }
  assert.is(new Set(names).size, names.length, names.join(' '));
  const nodes = await rows(pool, 'SELECT node FROM nodes ORDER BY node');
  assert.equal(
    nodes.map((row) => row.node),
    ['a', 'b'],
  );
  const held = await rows(pool, "SELECT count(*)::int AS open FROM open_sessions WHERE node = 'a'");
  assert.is(held[0]?.open, 1, 'the stopped run of a freed its slots; the new run holds its one session');
});

test('[P-65] [P-85] a keyed identity: one session across nodes, its quota of 3 used up across two nodes', async () => {
  const { url, pool } = await history();
  const key = await register(pool, 'acme'); // bronze: 3 images a day
  const a = await startNode(url, 'a', { access: 'keys' });
  const b = await startNode(url, 'b', { access: 'keys' });
  const first = await hello(a.port, key);
  assert.is(first.type, MessageType.WELCOME);
  const second = await hello(b.port, key);
  assert.equal([second.type, second.body.reason], [MessageType.REJECT, 'too-many-sessions']);
  for (const id of [1, 2]) {
    const answer = await get(first.peer, id);
    assert.is(answer.type, MessageType.REPLY);
    assert.is((answer.body.quota as { used: number }).used, id);
  }
  first.peer.sendJson(MessageType.REQUEST, { id: 3, command: 'exit' });
  await first.peer.closed;
  // The slot is free once the close is on record and its release has reached the cluster.
  await within(
    a.waitForEvent((event) => event.type === 'session-closed'),
    'the close on record',
  );
  await within(waitFor(pool, 'SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM open_sessions)'), 'the slot freed');
  const third = await hello(b.port, key);
  assert.is(third.type, MessageType.WELCOME);
  // b started before a served anything: its WELCOME still tells the count the cluster holds
  assert.is((third.body.quota as { remaining: number }).remaining, 1, 'the WELCOME says 2 of 3 are used');
  const served = await get(third.peer, 1);
  assert.is(served.type, MessageType.REPLY);
  assert.equal((served.body.quota as { used: number; remaining: number }).remaining, 0);
  const refused = await get(third.peer, 2, 'mandelbrot.png');
  assert.equal([refused.type, refused.body.code], [MessageType.ERROR, 'quota-exhausted']);
  const usage = await rows(pool, "SELECT used FROM identity_usage WHERE identity = 'acme'");
  assert.equal(usage, [{ used: 3 }]);
});

test('[P-60] [P-86] a key registered a moment ago is admitted at once, its notification not needed', async () => {
  const { url, pool } = await history();
  const a = await startNode(url, 'a', { access: 'keys' });
  for (const name of ['one', 'two', 'three']) {
    // As if the notification were missed (the node's listener reconnecting): the event alone, no NOTIFY.
    const { key, keyId, keyHash } = newClientKey();
    const data = JSON.stringify({ name, tier: 'bronze', keyId, keyHash });
    await pool.query("INSERT INTO events (at, session, type, data) VALUES ($1, NULL, 'client-registered', $2)", [
      Date.now(),
      data,
    ]);
    const answer = await hello(a.port, key);
    assert.is(answer.type, MessageType.WELCOME, JSON.stringify(answer.body));
    answer.peer.destroy();
  }
});

test('[P-86] [P-66] a revocation made through another connection closes the session on another node within a second', async () => {
  const { url, pool } = await history();
  const key = await register(pool, 'acme');
  await startNode(url, 'a', { access: 'keys' });
  const b = await startNode(url, 'b', { access: 'keys' });
  const session = await hello(b.port, key);
  assert.is(session.type, MessageType.WELCOME);
  const started = performance.now();
  await changeRegistry(pool, () => [{ type: 'client-revoked', data: { name: 'acme' } }]);
  const notice = await within(session.peer.nextJson(MessageType.NOTICE), 'the NOTICE revoked');
  const elapsed = performance.now() - started;
  assert.is(notice.kind, 'revoked');
  assert.ok(elapsed < 1_000, `the revocation took ${elapsed.toFixed(0)} ms`);
  await within(
    b.waitForEvent((event) => event.type === 'session-closed' && event.data.reason === 'identity-revoked'),
    'the close on record',
  );
});

test('[P-83] a node killed with SIGKILL: its sessions closed on record (node-lost) in time, its slots freed', async () => {
  const { url, pool } = await history();
  const survivor = await startNode(url, 'survivor', { capacity: 3 });
  const victim = await spawnServer([
    '--database',
    url,
    '--node-name',
    'victim',
    '--node-heartbeat-ms',
    String(HEARTBEAT_MS),
    '--node-lost-after-ms',
    String(LOST_AFTER_MS),
    '--capacity',
    '3',
    '--cache-dir',
    SAMPLE_IMAGES,
  ]);
  cleanups.push(async () => {
    victim.child.kill('SIGKILL');
    await victim.exited;
  });
  const held = [await hello(victim.port), await hello(victim.port), await hello(survivor.port)];
  for (const answer of held) assert.is(answer.type, MessageType.WELCOME);
  const full = await hello(survivor.port);
  assert.equal([full.type, full.body.reason], [MessageType.REJECT, 'server-full']);
  const victimSessions = held
    .slice(0, 2)
    .map((answer) => Number((answer.body.session as { name: string }).name.slice(7)));

  const lost = survivor.waitForEvent((event) => event.type === 'node-lost');
  const killedAt = performance.now();
  victim.child.kill('SIGKILL');
  await victim.exited;
  const event = (await within(lost, 'the node-lost record', 10_000)) as Extract<NewEvent, { type: 'node-lost' }>;
  const elapsed = performance.now() - killedAt;
  assert.equal([event.data.node, event.data.sessions], ['victim', 2]);
  // Lost after LOST_AFTER_MS without a heartbeat, seen at the next look (a heartbeat later); some slack for a busy box.
  assert.ok(elapsed < LOST_AFTER_MS + HEARTBEAT_MS + 1_000, `seen lost after ${elapsed.toFixed(0)} ms`);
  const closes = survivor.events.filter((recorded) => recorded.type === 'session-closed');
  assert.equal(
    closes.map((recorded) => [recorded.session, recorded.data]),
    victimSessions.map((session) => [session, { reason: 'node-lost', node: 'victim' }]),
  );
  const slots = await rows(pool, "SELECT count(*)::int AS open FROM open_sessions WHERE node = 'victim'");
  assert.is(slots[0]?.open, 0);
  const newcomer = await hello(survivor.port);
  assert.is(newcomer.type, MessageType.WELCOME, 'a slot of the lost node is free');
  // The usage document shows them closed, for that reason.
  let text = '';
  for await (const chunk of usageChunksOf(url)) text += chunk;
  const usage = JSON.parse(text) as { clients: Array<{ name: string; closeReason: string | null }> };
  for (const session of victimSessions) {
    const entry = usage.clients.find((client) => client.name === `client-${session}`);
    assert.is(entry?.closeReason, 'node-lost');
  }
});

test('[P-83] a node declared lost while cut off ends its sessions, records each close once, and joins again', async () => {
  const { url, pool } = await history();
  // heartbeats a second apart: none comes between the test's two statements below, that make a lost
  const a = await startNode(url, 'a', { nodeHeartbeatMs: 1_000, nodeLostAfterMs: 2_000 });
  const held = await hello(a.port);
  assert.is(held.type, MessageType.WELCOME);
  const session = Number((held.body.session as { name: string }).name.slice(7));
  // As a survivor would, after a's heartbeats stopped reaching the history for longer than the lost time.
  await pool.query("UPDATE nodes SET heartbeat_at = now() - interval '1 hour' WHERE node = 'a'");
  const recorded = await closeLostNodes(pool, 'survivor', LOST_AFTER_MS, Date.now());
  assert.equal(
    recorded.map((event) => event.type),
    ['session-closed', 'node-lost'],
  );
  // A session admitted after that, before a's next heartbeat: its close is not on record anywhere yet.
  const later = await hello(a.port);
  assert.is(later.type, MessageType.WELCOME);
  const laterSession = Number((later.body.session as { name: string }).name.slice(7));
  // a's next heartbeat finds its row gone: its sessions end at once.
  await within(held.peer.closed, 'the session ended by its node');
  await within(later.peer.closed, 'the later session ended by its node');
  await within(waitFor(pool, "SELECT 1 FROM nodes WHERE node = 'a'"), 'a registered again');
  const closes = await rows(pool, `SELECT data FROM events WHERE type = 'session-closed' AND session = ${session}`);
  assert.equal(closes, [{ data: '{"reason":"node-lost","node":"a"}' }], "one close on record, the survivor's");
  await within(
    a.waitForEvent((event) => event.type === 'session-closed' && event.session === laterSession),
    "the later session's close, recorded by a",
  );
  const laterCloses = await rows(
    pool,
    `SELECT data FROM events WHERE type = 'session-closed' AND session = ${laterSession}`,
  );
  assert.equal(laterCloses, [{ data: '{"reason":"node-lost"}' }], 'the later session closed on record once, by a');
  const again = await hello(a.port);
  assert.is(again.type, MessageType.WELCOME, 'a serves again');
});

test('[P-82] [P-84] PostgreSQL down: a HELLO is refused history-unavailable, on record once it is back', async () => {
  const { url } = await history();
  const a = await startNode(url, 'a');
  await postgres.halt();
  try {
    const refused = await hello(a.port);
    assert.equal([refused.type, refused.body.reason], [MessageType.REJECT, 'history-unavailable']);
  } finally {
    await postgres.start();
  }
  await within(
    a.waitForEvent((event) => event.type === 'connection-rejected' && event.data.reason === 'history-unavailable'),
    'the REJECT on record once PostgreSQL is back',
    15_000,
  );
  const admitted = await hello(a.port);
  assert.is(admitted.type, MessageType.WELCOME, 'the node recovers by itself');
});

test('[P-85] a keyed get refused for want of the cluster (PostgreSQL down) reports the quota as counted', async () => {
  const { url, pool } = await history();
  const key = await register(pool, 'acme', 'gold'); // 10 images a day
  const a = await startNode(url, 'a', { access: 'keys' });
  const held = await hello(a.port, key);
  assert.is(held.type, MessageType.WELCOME);
  for (const id of [1, 2]) assert.is((await get(held.peer, id)).type, MessageType.REPLY);
  await postgres.halt();
  try {
    // the image's reservation cannot be made: nothing is counted, and the ERROR says so
    const refused = await get(held.peer, 3);
    assert.equal([refused.type, refused.body.code], [MessageType.ERROR, 'history-unavailable']);
    const { limit, used, remaining } = refused.body.quota as Record<string, number>;
    assert.equal({ limit, used, remaining }, { limit: 10, used: 2, remaining: 8 });
  } finally {
    await postgres.start();
  }
  assert.equal(await rows(pool, "SELECT used FROM identity_usage WHERE identity = 'acme'"), [{ used: 2 }]);
});

test('[P-83] after an outage of PostgreSQL the first node back does not take the others for lost', async () => {
  const { url, pool } = await history();
  // b logs in as a role of its own, so that the test can keep it out a moment longer than a after the outage.
  await pool.query('CREATE ROLE node_b LOGIN SUPERUSER');
  const fast = { nodeHeartbeatMs: 50, nodeLostAfterMs: 300 };
  const a = await startNode(url, 'a', fast);
  const b = await startNode(url.replace('imgcache@', 'node_b@'), 'b', fast);
  const held = await hello(b.port);
  assert.is(held.type, MessageType.WELCOME);
  await pool.query('ALTER ROLE node_b NOLOGIN'); // its connections live on until PostgreSQL stops
  await postgres.halt();
  await postgres.start();
  // a is back, and has beaten past the time that would declare b lost (b's last heartbeat was before the outage)
  await within(
    waitFor(
      pool,
      `SELECT 1 FROM nodes a, nodes b WHERE a.node = 'a' AND b.node = 'b'
       AND a.heartbeat_at > b.heartbeat_at + interval '350 milliseconds'`,
    ),
    'a back, b silent for longer than the lost time',
  );
  await pool.query('ALTER ROLE node_b LOGIN'); // b is back a heartbeat later, before a has been back 300 ms
  const judged = Date.now() + 2 * 300;
  await within(
    waitFor(
      pool,
      `SELECT 1 FROM nodes HAVING count(*) FILTER (WHERE heartbeat_at > to_timestamp(${judged} / 1000.0)) = 2`,
    ),
    'both nodes beating long enough to judge',
  );
  const lost = await rows(pool, "SELECT data FROM events WHERE type IN ('node-lost', 'session-closed')");
  assert.equal(lost, [], 'no node lost, no session closed');
  assert.ok(![a, b].some((node) => node.events.some((event) => event.type === 'node-lost')));
  held.peer.sendJson(MessageType.REQUEST, { id: 1, command: 'list' });
  assert.is((await held.peer.next())?.type, MessageType.REPLY, 'the session lives on');
});

/** Resolves once `sql` returns a row (a query PostgreSQL's restart cut counts as none), at most 5 s. */
function waitFor(pool: Pool, sql: string): Promise<void> {
  return eventually(async () => (await rows(pool, sql).catch(() => [])).length > 0, `a row for ${sql}`);
}

test.run();
