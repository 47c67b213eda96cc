/**
 * The live catalog over real sockets [P-37]: images added to, replaced in and removed from the served folder while
 * the server runs, as a client sees them. Each test waits for the catalog's own events, never for a fixed time.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { LocalCache } from '../client/local-cache.ts';
import type { ServerConfig } from '../src/config.ts';
import { ServerError } from '../src/protocol/index.ts';
import { copySampleImages, nextChange, nextSettling } from './helpers/live-images.ts';
import { SAMPLE_IMAGES, startTestServer, type TestServer } from './helpers/test-server.ts';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sample = (name: string) => readFileSync(path.join(SAMPLE_IMAGES, name));

interface Live {
  test: TestServer;
  images: string;
  cache: LocalCache;
  client: ImgcacheClient;
  stop(): Promise<void>;
}

/** A platinum client of a server over a private, changeable copy of the sample images, and a client cache folder. */
async function startLive(options: Partial<Omit<ServerConfig, 'codes'>> = {}): Promise<Live> {
  const { folder, images } = copySampleImages();
  const server = await startTestServer({ folder, cacheDir: images, codes: [950], catalogRescanMs: 100, ...options });
  const client = await ImgcacheClient.connect({ port: server.port });
  const cache = await LocalCache.open(path.join(folder, 'downloads'), `127.0.0.1:${server.port}`);
  return {
    test: server,
    images,
    cache,
    client,
    stop: async () => {
      client.close();
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

async function refusalCode(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  if (!(error instanceof ServerError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return error.code;
}

test('[P-37] an image replaced on disk is detected, re-sent, and the new bytes land in the client cache', async () => {
  const live = await startLive();
  try {
    const first = await live.cache.fetch(live.client, 'sunset.png');
    assert.is(first.status, 'downloaded');
    const replacement = sample('mandelbrot.png');
    const changed = nextChange(live.test.server.catalog, 'sunset.png');
    writeFileSync(path.join(live.images, 'sunset.png'), replacement);
    assert.equal(await changed, {
      kind: 'changed',
      name: 'sunset.png',
      sha256: sha(replacement),
      version: live.test.server.catalog.version,
    });
    const listed = (await live.client.list()).images.find((image) => image.name === 'sunset.png');
    assert.equal([listed?.sha256, listed?.bytes], [sha(replacement), replacement.length]);
    assert.is(live.cache.stateOf({ name: 'sunset.png', sha256: sha(replacement) }), 'stale');

    const second = await live.cache.fetch(live.client, 'sunset.png');
    assert.is(second.status, 'downloaded', 'the hash held is no longer current: the whole image comes back');
    assert.is(second.entry.sha256, sha(replacement));
    assert.ok(readFileSync(second.path).equals(replacement));
    assert.is((await live.cache.fetch(live.client, 'sunset.png')).status, 'not-modified');
  } finally {
    await live.stop();
  }
});

test('[P-37] an image added while the server runs is listed and served', async () => {
  const live = await startLive();
  try {
    const added = nextChange(live.test.server.catalog, 'fresh.png', 'added');
    writeFileSync(path.join(live.images, 'fresh.png'), sample('checkerboard-dice.png'));
    await added;
    const names = (await live.client.list()).images.map((image) => image.name);
    assert.equal(names, ['checkerboard-dice.png', 'fresh.png', 'mandelbrot.png', 'sunset.png', 'terrain-large.png']);
    const fetched = await live.cache.fetch(live.client, 'fresh.png');
    assert.ok(readFileSync(fetched.path).equals(sample('checkerboard-dice.png')));
  } finally {
    await live.stop();
  }
});

test('[P-37] a removed image is answered image-not-found and leaves the list', async () => {
  const live = await startLive();
  try {
    await live.cache.fetch(live.client, 'mandelbrot.png');
    const removed = nextChange(live.test.server.catalog, 'mandelbrot.png', 'removed');
    unlinkSync(path.join(live.images, 'mandelbrot.png'));
    await removed;
    assert.is(await refusalCode(live.cache.fetch(live.client, 'mandelbrot.png')), 'image-not-found');
    assert.not.ok((await live.client.list()).images.some((image) => image.name === 'mandelbrot.png'));
    assert.equal(live.client.quota.used, 1, 'the refusal cost nothing');
  } finally {
    await live.stop();
  }
});

test('[P-37] a half-written file is not served until it is complete: absent when new, the old version when replaced', async () => {
  // A file must keep its size and time for a whole rescan period (here 300 ms) before it enters: the test asks in
  // between, right after the catalog has seen the partial file.
  const live = await startLive({ catalogRescanMs: 300 });
  const catalog = live.test.server.catalog;
  try {
    const whole = sample('mandelbrot.png');
    const half = whole.subarray(0, whole.length >> 1);

    const seenNew = nextSettling(catalog, 'new.png');
    const newFile = openSync(path.join(live.images, 'new.png'), 'w');
    writeSync(newFile, half);
    await seenNew;
    assert.is(await refusalCode(live.client.getInto('new.png', { write: () => undefined })), 'image-not-found');
    const enteredNew = nextChange(catalog, 'new.png', 'added');
    writeSync(newFile, whole.subarray(half.length));
    closeSync(newFile);
    assert.is((await enteredNew).sha256, sha(whole), 'it entered with the hash of all its bytes');
    assert.ok(readFileSync((await live.cache.fetch(live.client, 'new.png')).path).equals(whole));

    const old = sample('sunset.png');
    const seenRewrite = nextSettling(catalog, 'sunset.png');
    const rewritten = openSync(path.join(live.images, 'sunset.png'), 'w');
    writeSync(rewritten, half);
    await seenRewrite;
    const during = await live.cache.fetch(live.client, 'sunset.png');
    assert.is(during.entry.sha256, sha(old), 'the old version, whole, while the new one is being written');
    assert.ok(readFileSync(during.path).equals(old));
    const replaced = nextChange(catalog, 'sunset.png', 'changed');
    writeSync(rewritten, whole.subarray(half.length));
    closeSync(rewritten);
    assert.is((await replaced).sha256, sha(whole));
    const after = await live.cache.fetch(live.client, 'sunset.png');
    assert.is(after.status, 'downloaded');
    assert.ok(readFileSync(after.path).equals(whole));
  } finally {
    await live.stop();
  }
});

test('[P-37] symbolic links and sub-folders put in the folder are never served', async () => {
  const live = await startLive();
  try {
    const witness = nextChange(live.test.server.catalog, 'witness.png', 'added');
    symlinkSync(path.join(live.images, 'sunset.png'), path.join(live.images, 'link.png'));
    mkdirSync(path.join(live.images, 'folder.png'));
    writeFileSync(path.join(live.images, 'witness.png'), sample('sunset.png'));
    await witness; // the looks that let witness.png in saw the link and the folder too
    for (const name of ['link.png', 'folder.png']) {
      assert.is(await refusalCode(live.client.getInto(name, { write: () => undefined })), 'image-not-found', name);
    }
    const names = (await live.client.list()).images.map((image) => image.name);
    assert.not.ok(names.includes('link.png') || names.includes('folder.png'));
  } finally {
    await live.stop();
  }
});

test('[P-37] an image streamed from disk (over the memory budget) is replaced and re-sent the same way', async () => {
  const live = await startLive({ memoryBudgetBytes: 0 });
  try {
    assert.equal(live.test.server.catalog.memoryUse(), { bytes: 0, images: 0 });
    const first = await live.cache.fetch(live.client, 'terrain-large.png');
    assert.ok(readFileSync(first.path).equals(sample('terrain-large.png')));
    const replacement = sample('mandelbrot.png');
    const changed = nextChange(live.test.server.catalog, 'terrain-large.png', 'changed');
    writeFileSync(path.join(live.images, 'terrain-large.png'), replacement);
    await changed;
    const second = await live.cache.fetch(live.client, 'terrain-large.png');
    assert.is(second.status, 'downloaded');
    assert.ok(readFileSync(second.path).equals(replacement));
  } finally {
    await live.stop();
  }
});

test.run();
