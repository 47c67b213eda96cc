/**
 * A single server on a PostgreSQL history (`--history postgres://…`), on a real PostgreSQL 15: the seed's basic
 * cases, a history that survives a restart with names never given twice, the usage document equal in meaning to
 * SQLite's for the same sessions, and PostgreSQL stopped under a session: answers refused with history-unavailable,
 * facts kept, everything on record once it is back, by itself.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { usageChunksOf } from '../db/history-backend.ts';
import { readEvents } from '../db/postgres/history-store.ts';
import { openPool } from '../db/postgres/pool.ts';
import { CONNECTION_NUMBER_BLOCK } from '../db/postgres/schema.ts';
import { RejectedError, ServerError } from '../src/protocol/index.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const SAMPLE_NAMES = readdirSync(SAMPLE_IMAGES)
  .filter((name) => name.endsWith('.png'))
  .sort();

let postgres: PostgresInstance;
let databases = 0;

test.before(async () => {
  postgres = await startPostgres();
});

test.after(async () => {
  await postgres?.stop();
});

/** A fresh, empty database of the test's PostgreSQL. */
function freshHistory(): Promise<string> {
  databases++;
  return postgres.createDatabase(`history_${databases}`);
}

async function eventsOf(url: string) {
  const pool = openPool(url, { max: 1 });
  try {
    return await readEvents(pool);
  } finally {
    await pool.end();
  }
}

async function usageOf(location: string): Promise<UsageDocument> {
  let text = '';
  for await (const piece of usageChunksOf(location)) text += piece;
  return JSON.parse(text) as UsageDocument;
}

interface UsageDocument {
  generatedAt: string;
  clients: Array<Record<string, unknown> & { name: string; requests: Array<Record<string, unknown>> }>;
  rejected: Array<Record<string, unknown>>;
}

test('seed cases on PostgreSQL: three clients welcomed and listing, the fourth rejected, quota, usage as platinum', async () => {
  const running = await startTestServer({ database: await freshHistory(), codes: [108, 450, 950] });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const clients: ImgcacheClient[] = [];
    for (let index = 0; index < 3; index++) clients.push(await ImgcacheClient.connect({ port: running.port }));
    assert.is(new Set(clients.map((client) => client.welcome.session.name)).size, 3, 'each client has its own name');
    for (const list of await Promise.all(clients.map((client) => client.list()))) {
      assert.equal(
        list.images.map((image) => image.name),
        SAMPLE_NAMES,
      );
    }
    const fourth = await ImgcacheClient.connect({ port: running.port }).then(
      () => null,
      (error: unknown) => error,
    );
    assert.instance(fourth, RejectedError);
    assert.is((fourth as RejectedError).reject.reason, 'server-full');

    const [bronze, silver, platinum] = clients as [ImgcacheClient, ImgcacheClient, ImgcacheClient];
    const outcomes: string[] = [];
    for (const name of ['sunset.png', 'sunset.png', 'mandelbrot.png', 'sunset.png']) {
      try {
        await downloadImage(bronze, name, folder);
        outcomes.push('served');
      } catch (error) {
        outcomes.push(error instanceof ServerError ? error.body.code : 'closed');
      }
    }
    assert.equal(outcomes, ['served', 'served', 'served', 'quota-exhausted'], 'bronze: three images, then refused');
    const refusal = await silver.usage().then(
      () => null,
      (error: unknown) => error,
    );
    assert.is((refusal as ServerError).body.code, 'usage-forbidden');
    assert.is(platinum.welcome.session.tier, 'platinum');
    const usage = (await platinum.usage()) as UsageDocument;
    const record = usage.clients.find((client) => client.name === bronze.welcome.session.name);
    assert.equal(
      record?.requests.map((request) => [request.image, request.outcome]),
      [
        ['sunset.png', 'served'],
        ['sunset.png', 'served'],
        ['mandelbrot.png', 'served'],
        ['sunset.png', 'refused'],
      ],
    );
    assert.is(usage.rejected.length, 1, 'the fourth connection is on record as rejected');
    // [P-46] one client's part of the document, read by its session alone
    const one = JSON.parse(await platinum.usageText({ client: bronze.welcome.session.name })) as UsageDocument;
    assert.equal([one.clients, one.rejected], [[record], []]);
    // [P-46] a time range: none admitted in the future, all since an hour ago
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const none = JSON.parse(await platinum.usageText({ since: future })) as UsageDocument;
    assert.equal([none.clients, none.rejected], [[], []]);
    const past = new Date(Date.now() - 3_600_000).toISOString();
    const all = JSON.parse(await platinum.usageText({ since: past })) as UsageDocument;
    assert.equal(
      all.clients.map((client) => client.name),
      usage.clients.map((client) => client.name),
    );
    await Promise.all([silver.exit(), platinum.exit()]);
  } finally {
    await running.stop();
  }
});

test('the history on PostgreSQL survives a restart: names are never given twice, both runs are on record', async () => {
  const url = await freshHistory();
  const names: string[] = [];
  for (let run = 0; run < 2; run++) {
    const running = await startTestServer({ database: url, codes: [950] });
    try {
      const client = await ImgcacheClient.connect({ port: running.port });
      names.push(client.welcome.session.name);
      await downloadImage(client, 'sunset.png', makeTemporaryFolder('imgcache-client-'));
      await client.exit();
    } finally {
      await running.stop();
    }
  }
  assert.is(new Set(names).size, 2, `two names: ${names.join(', ')}`);
  const events = await eventsOf(url);
  assert.equal(
    events.filter((event) => event.type === 'server-started' || event.type === 'server-stopped').map((e) => e.type),
    ['server-started', 'server-stopped', 'server-started', 'server-stopped'],
  );
  const usage = await usageOf(url);
  assert.equal(
    usage.clients.map((client) => client.name),
    names,
  );
  assert.ok(usage.clients.every((client) => client.closeReason === 'client-exit'));
});

/** The same sessions against a server, whatever its history: three clients, served, missing, refused, rejected. */
async function sameSessions(database: string): Promise<void> {
  const running = await startTestServer({ database, codes: [108, 450, 950], capacity: 2 });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const bronze = await ImgcacheClient.connect({ port: running.port });
    const silver = await ImgcacheClient.connect({ port: running.port });
    await ImgcacheClient.connect({ port: running.port }).catch(() => null); // rejected: server-full
    for (const name of ['sunset.png', 'missing.png', 'missing.png', 'mandelbrot.png', 'sunset.png', 'sunset.png']) {
      await downloadImage(bronze, name, folder).catch(() => null);
    }
    await downloadImage(silver, 'mandelbrot.png', folder);
    await silver.exit();
    const platinum = await ImgcacheClient.connect({ port: running.port });
    await platinum.usage();
    await platinum.exit();
  } finally {
    await running.stop();
  }
}

/** The document without the times of this run (they differ between two runs, whatever the history). */
function withoutTimes(document: UsageDocument): unknown {
  const { generatedAt: _, ...rest } = document;
  return JSON.parse(JSON.stringify(rest, (key, value) => (/At$|^at$/.test(key) ? typeof value : value)));
}

test('[P-32] the usage document on PostgreSQL equals SQLite’s in meaning for the same sessions', async () => {
  const url = await freshHistory();
  const file = path.join(makeTemporaryFolder(), 'history.sqlite');
  await sameSessions(url);
  await sameSessions(file);
  const fromPostgres = await usageOf(url);
  const fromSqlite = await usageOf(file);
  assert.ok(fromSqlite.clients.length >= 3 && fromSqlite.rejected.length === 1, 'the sessions are on record');
  assert.equal(withoutTimes(fromPostgres), withoutTimes(fromSqlite));
});

test('[P-26] PostgreSQL stopped under a session: answers refused (history-unavailable), facts kept, on record once back', async () => {
  const url = await freshHistory();
  const running = await startTestServer({ database: url, codes: [950, 950, 950] });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const client = await ImgcacheClient.connect({ port: running.port });
    const other = await ImgcacheClient.connect({ port: running.port });
    await downloadImage(client, 'sunset.png', folder);
    await postgres.halt();
    const refused = await downloadImage(client, 'mandelbrot.png', folder).then(
      () => null,
      (error: unknown) => error,
    );
    // The fatal ERROR ends the session: the client library reports the close with its code.
    assert.match(String(refused), 'history-unavailable');
    const closes = ['client', 'other'].map((_, index) =>
      running.waitForEvent(
        (event) =>
          event.type === 'session-closed' && `client-${event.session}` === [client, other][index]?.welcome.session.name,
      ),
    );
    await other.exit(); // a fact: held while PostgreSQL is away
    await postgres.start();
    await within(
      Promise.all(closes),
      'the closes held during the outage are on record once PostgreSQL is back',
      15_000,
    );
    // Recovered by itself: a new session is served and recorded.
    const later = await ImgcacheClient.connect({ port: running.port });
    await downloadImage(later, 'mandelbrot.png', folder);
    await later.exit();
  } finally {
    if (!postgres.running()) await postgres.start();
    await running.stop();
  }
  const events = await eventsOf(url);
  const served = events.filter((event) => event.type === 'image-served').map((event) => event.data.image);
  assert.equal(served, ['sunset.png', 'mandelbrot.png'], 'the refused answer is not on record, the later one is');
  assert.is(events.filter((event) => event.type === 'session-closed').length, 3, 'every session closed once');
  assert.ok(events.some((event) => event.type === 'server-stopped'));
});

test('[P-26] a node out of connection numbers while PostgreSQL is away still says REJECT history-unavailable, and it is on record once back', async () => {
  const url = await freshHistory();
  const running = await startTestServer({ database: url });
  // Past every number the node holds (at most two blocks), whatever it used before PostgreSQL went away.
  const connections = 2 * CONNECTION_NUMBER_BLOCK + 4;
  const unnumbered = () =>
    running.waitForEvent((event) => event.type === 'connection-rejected' && event.session === null);
  try {
    await postgres.halt();
    for (let index = 0; index < connections; index++) {
      const outcome = await within(
        ImgcacheClient.connect({ port: running.port }).then(
          () => null,
          (error: unknown) => error,
        ),
        `connection ${index + 1} is answered`,
      );
      assert.instance(outcome, RejectedError, `connection ${index + 1} is rejected, not closed without a word`);
      assert.is((outcome as RejectedError).reject.reason, 'history-unavailable');
    }
    await postgres.start();
    await within(unnumbered(), 'the rejections without a number are on record once PostgreSQL is back', 15_000);
  } finally {
    if (!postgres.running()) await postgres.start();
    await running.stop();
  }
  const rejected = (await eventsOf(url)).filter((event) => event.type === 'connection-rejected');
  assert.is(rejected.length, connections, 'every rejection is on record');
  assert.ok(
    rejected.some((event) => event.session === null),
    'some came after the last number the node held',
  );
  assert.ok(rejected.every((event) => event.data.reason === 'history-unavailable'));
  assert.is((await usageOf(url)).rejected.length, connections, 'and every one is in the usage document');
});

test.run();
