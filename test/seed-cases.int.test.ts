/**
 * The seed report's five test cases ("Test Cases" 1 to 5), over real sockets against a real server and a real
 * SQLite history.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import {
  bronzeGetsOneAndIsRefusedUsage,
  downloadEverySample,
  fourthIsRejected,
  platinumReadsBronzeUsage,
  SAMPLE_NAMES,
  sixGetsOnThreeImages,
} from './helpers/seed-steps.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';

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
    await fourthIsRejected(() => ImgcacheClient.connect({ port: running.port }));
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
    await downloadEverySample(client, folder);
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
    await sixGetsOnThreeImages(client, folder);
  } finally {
    await running.stop();
  }
});

test('seed 5 (testPlatinumUser): platinum reads the usage history, others get usage-forbidden [P-22]', async () => {
  const running = await startTestServer({ codes: [108, 950] });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const bronze = await ImgcacheClient.connect({ port: running.port });
    await bronzeGetsOneAndIsRefusedUsage(bronze, folder);
    const platinum = await ImgcacheClient.connect({ port: running.port });
    await platinumReadsBronzeUsage(platinum, bronze.welcome.session.name);
    await Promise.all([bronze.exit(), platinum.exit()]);
  } finally {
    await running.stop();
  }
});

test.run();
