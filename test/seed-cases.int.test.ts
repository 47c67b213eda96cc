/**
 * The seed report's five test cases ("Test Cases" 1 to 5), over real sockets against a real server and a real
 * SQLite history.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { RejectedError, ServerError } from '../src/protocol/index.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';

const SAMPLE_NAMES = readdirSync(SAMPLE_IMAGES)
  .filter((name) => name.endsWith('.png'))
  .sort();

test('seed 1 (testClientServer): three concurrent clients list the images and exit', async () => {
  const running = await startTestServer({ codes: [108, 450, 750] });
  try {
    const clients = await Promise.all([1, 2, 3].map(() => ImgcacheClient.connect({ port: running.port })));
    const names = new Set(clients.map((client) => client.welcome.session.name));
    assert.is(names.size, 3, 'each client has its own name');
    const lists = await Promise.all(clients.map((client) => client.list()));
    for (const list of lists) {
      assert.equal(
        list.images.map((image) => image.name),
        SAMPLE_NAMES,
      );
    }
    assert.equal(
      lists.map((list) => list.session.tier),
      ['bronze', 'silver', 'gold'],
    );
    await Promise.all(clients.map((client) => client.exit()));
    assert.ok(clients.every((client) => client.closed));
  } finally {
    await running.stop();
  }
});

test('seed 2 (testMaxClient): the fourth concurrent client is rejected, and knows it before any command [P-9]', async () => {
  const running = await startTestServer();
  try {
    const admitted = await Promise.all([1, 2, 3].map(() => ImgcacheClient.connect({ port: running.port })));
    const fourth = await ImgcacheClient.connect({ port: running.port }).then(
      () => null,
      (error: unknown) => error,
    );
    assert.instance(fourth, RejectedError);
    const reject = (fourth as RejectedError).reject;
    assert.is(reject.reason, 'server-full');
    assert.equal(reject.occupancy, { open: 3, capacity: 3 });
    assert.ok((reject.retryAfterMs ?? 0) > 0);
    // Once a slot frees, a new client gets in.
    await admitted[0]?.exit();
    const late = await ImgcacheClient.connect({ port: running.port });
    assert.ok(late.welcome.session.name);
    await Promise.all([late, ...admitted.slice(1)].map((client) => client.exit()));
  } finally {
    await running.stop();
  }
});

test('seed 3 (testImageCache): every sample image arrives byte-identical in the client cache folder', async () => {
  const running = await startTestServer({ codes: [950] });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const client = await ImgcacheClient.connect({ port: running.port });
    for (const name of SAMPLE_NAMES) {
      const saved = await downloadImage(client, name, folder);
      assert.is(saved.path, path.join(folder, name));
      assert.ok(readFileSync(saved.path).equals(readFileSync(path.join(SAMPLE_IMAGES, name))), `${name} is intact`);
    }
    assert.equal(readdirSync(folder).sort(), SAMPLE_NAMES, 'no temporary file is left behind');
    await client.exit();
  } finally {
    await running.stop();
  }
});

test('seed 4 (testQuota): code 108 gets three images of six, the fourth is refused and the server closes [P-21]', async () => {
  const running = await startTestServer({ codes: [108] });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const client = await ImgcacheClient.connect({ port: running.port });
    assert.equal(client.welcome.session.code, 108);
    assert.is(client.welcome.quota.limit, 3);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const outcomes: string[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      const name = SAMPLE_NAMES[attempt % SAMPLE_NAMES.length] as string;
      try {
        await downloadImage(client, name, folder);
        outcomes.push('served');
      } catch (error) {
        outcomes.push(error instanceof ServerError ? error.body.code : 'closed');
      }
      if (attempt === 2) {
        // The last allowed request keeps the connection open: list still works.
        assert.is(client.closed, false);
        assert.is((await client.list()).quota.remaining, 0);
      }
    }
    assert.equal(outcomes, ['served', 'served', 'served', 'quota-exhausted', 'closed', 'closed']);
    await closed;
    assert.is(client.closed, true);
    assert.is(readdirSync(folder).length, 3);
  } finally {
    await running.stop();
  }
});

test('seed 5 (testPlatinumUser): platinum reads the usage history, others get usage-forbidden [P-22]', async () => {
  const running = await startTestServer({ codes: [108, 950] });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const bronze = await ImgcacheClient.connect({ port: running.port });
    await downloadImage(bronze, 'sunset.png', folder);
    const refusal = await bronze.usage().then(
      () => null,
      (error: unknown) => error,
    );
    assert.instance(refusal, ServerError);
    assert.is((refusal as ServerError).body.code, 'usage-forbidden');
    assert.is((refusal as ServerError).body.fatal, false);
    assert.is(bronze.quota.used, 1, 'a refused usage costs nothing');
    assert.is((await bronze.list()).quota.remaining, 2, 'the connection stays open');

    const platinum = await ImgcacheClient.connect({ port: running.port });
    assert.is(platinum.welcome.session.tier, 'platinum');
    const usage = (await platinum.usage()) as {
      clients: Array<{ name: string; code: number; tier: string; requests: Array<{ image: string; outcome: string }> }>;
    };
    const record = usage.clients.find((client) => client.name === bronze.welcome.session.name);
    assert.ok(record, 'the bronze client is in the history');
    assert.is(record?.code, 108);
    assert.is(record?.tier, 'bronze');
    assert.equal(
      record?.requests.map((request) => [request.image, request.outcome]),
      [['sunset.png', 'served']],
    );
    assert.ok(usage.clients.some((client) => client.tier === 'platinum'));
    await Promise.all([bronze.exit(), platinum.exit()]);
  } finally {
    await running.stop();
  }
});

test.run();
