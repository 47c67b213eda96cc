/**
 * The steps of the seed report's test cases that do not depend on what serves them: the same checks run against one
 * server (test/seed-cases.int.test.ts) and against a cluster behind HAProxy (test/cluster-seed.e2e.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { downloadImage } from '../../client/download.ts';
import type { ImgcacheClient } from '../../client/imgcache-client.ts';
import { RejectedError, ServerError } from '../../src/protocol/index.ts';
import { SAMPLE_IMAGES } from './test-server.ts';

export const SAMPLE_NAMES = readdirSync(SAMPLE_IMAGES)
  .filter((name) => name.endsWith('.png'))
  .sort();

/** Seed 2 [P-9]: a fourth client at capacity 3 is rejected server-full, with the occupancy and a retry hint. */
export async function fourthIsRejected(connect: () => Promise<ImgcacheClient>): Promise<void> {
  const fourth = await connect().then(
    () => null,
    (error: unknown) => error,
  );
  assert.instance(fourth, RejectedError);
  const reject = (fourth as RejectedError).reject;
  assert.is(reject.reason, 'server-full');
  assert.equal(reject.occupancy, { open: 3, capacity: 3 });
  assert.ok((reject.retryAfterMs ?? 0) > 0);
}

/** Seed 3: every sample image downloaded into `folder` arrives byte-identical, and nothing else is left there. */
export async function downloadEverySample(client: ImgcacheClient, folder: string): Promise<void> {
  for (const name of SAMPLE_NAMES) {
    const saved = await downloadImage(client, name, folder);
    assert.is(saved.path, path.join(folder, name));
    assert.ok(readFileSync(saved.path).equals(readFileSync(path.join(SAMPLE_IMAGES, name))), `${name} is intact`);
  }
  assert.equal(readdirSync(folder).sort(), SAMPLE_NAMES, 'no temporary file is left behind');
}

/**
 * Seed 4 [P-21]: a bronze client (3 images) asks for six; after the third the connection stays open (list works),
 * the fourth is refused quota-exhausted and the server closes; three files are saved.
 */
export async function sixGetsOnThreeImages(client: ImgcacheClient, folder: string): Promise<void> {
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
}

/** Seed 5 [P-22], the bronze side: one image, then usage refused (usage-forbidden, not fatal, free of charge). */
export async function bronzeGetsOneAndIsRefusedUsage(bronze: ImgcacheClient, folder: string): Promise<void> {
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
}

/** Seed 5, the platinum side: the usage document holds the bronze client's code 108 and its one image served. */
export async function platinumReadsBronzeUsage(platinum: ImgcacheClient, bronzeName: string): Promise<void> {
  assert.is(platinum.welcome.session.tier, 'platinum');
  const usage = (await platinum.usage()) as {
    clients: Array<{ name: string; code: number; tier: string; requests: Array<{ image: string; outcome: string }> }>;
  };
  const record = usage.clients.find((client) => client.name === bronzeName);
  assert.ok(record, 'the bronze client is in the history');
  assert.is(record?.code, 108);
  assert.is(record?.tier, 'bronze');
  assert.equal(
    record?.requests.map((request) => [request.image, request.outcome]),
    [['sunset.png', 'served']],
  );
  assert.ok(usage.clients.some((client) => client.tier === 'platinum'));
}
