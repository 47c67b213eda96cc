/**
 * Conditional get over real sockets [P-34] [P-35] [P-36]: the bytes on the wire, the quota, the client's cache
 * folder and its manifest, the history, and the CLI's `get`, `list` and `refresh`.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../client/cli.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { LocalCache, MANIFEST_FILE } from '../client/local-cache.ts';
import { openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import type { UsageDocument } from '../db/usage-projection.ts';
import { type Frame, MessageType, parseJsonBody, ServerError } from '../src/protocol/index.ts';
import { copySampleImages, nextChange } from './helpers/live-images.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { SAMPLE_IMAGES, startTestServer, type TestServer } from './helpers/test-server.ts';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sample = (name: string) => readFileSync(path.join(SAMPLE_IMAGES, name));

interface Live {
  test: TestServer;
  images: string;
  downloads: string;
  stop(): Promise<void>;
}

/** A server over a private copy of the sample images, which the test may change; codes handed out in turn. */
async function startLive(codes: number[]): Promise<Live> {
  const { folder, images } = copySampleImages();
  const server = await startTestServer({ folder, cacheDir: images, codes, catalogRescanMs: 100 });
  return {
    test: server,
    images,
    downloads: path.join(folder, 'downloads'),
    stop: async () => {
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

async function welcomed(port: number): Promise<RawConnection> {
  const raw = await RawConnection.open(port);
  raw.hello();
  await raw.nextJson(MessageType.WELCOME);
  return raw;
}

async function nextFrame(raw: RawConnection): Promise<Frame> {
  const frame = await raw.next();
  if (!frame) throw new Error('the server closed the connection');
  return frame;
}

/** Reads one whole streamed get: REPLY, DATA..., END; returns the REPLY and the content. */
async function readImageStream(raw: RawConnection): Promise<{ reply: Record<string, unknown>; content: Buffer }> {
  const reply = await raw.nextJson(MessageType.REPLY);
  const pieces: Buffer[] = [];
  for (let frame = await nextFrame(raw); frame.type !== MessageType.END; frame = await nextFrame(raw)) {
    assert.is(frame.type, MessageType.DATA);
    pieces.push(frame.body);
  }
  raw.received(Number(reply.id)); // [P-40]
  return { reply, content: Buffer.concat(pieces) };
}

test('[P-34] [P-35] an unchanged image comes back not-modified with zero image bytes on the wire; quota unchanged', async () => {
  const server = await startTestServer({ codes: [108] });
  const raw = await welcomed(server.port);
  try {
    raw.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'mandelbrot.png' });
    const first = await readImageStream(raw);
    const held = sha(first.content);
    assert.is(held, sha(sample('mandelbrot.png')));
    assert.equal(first.reply.quota, { limit: 3, used: 1, remaining: 2 });

    const before = raw.socket.bytesRead;
    raw.sendJson(MessageType.REQUEST, { id: 2, command: 'get', image: 'mandelbrot.png', have: held });
    raw.sendJson(MessageType.REQUEST, { id: 3, command: 'list' });
    const notModified = await nextFrame(raw);
    const list = await nextFrame(raw);
    const received = raw.socket.bytesRead - before;

    assert.is(notModified.type, MessageType.REPLY);
    const reply = parseJsonBody(notModified.body);
    assert.equal(reply, {
      id: 2,
      command: 'get',
      status: 'not-modified',
      image: 'mandelbrot.png',
      sha256: held,
      bytes: first.content.length,
      modified: first.reply.modified,
      quota: { limit: 3, used: 1, remaining: 2 },
    });
    assert.is(list.type, MessageType.REPLY, 'the very next frame answers the list: no DATA, no END in between');
    assert.is(parseJsonBody(list.body).id, 3);
    assert.is(received, 5 + notModified.body.length + 5 + list.body.length, 'nothing but the two REPLY frames');
    const notModifiedBytes = 5 + notModified.body.length;
    assert.ok(notModifiedBytes < 512, `${notModifiedBytes} bytes for an image of ${first.content.length}`);
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test('[P-34] a have that is not the current hash gets the whole image, counted as usual', async () => {
  const server = await startTestServer({ codes: [108] });
  const raw = await welcomed(server.port);
  try {
    raw.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'sunset.png', have: '0'.repeat(64) });
    const { reply, content } = await readImageStream(raw);
    assert.is(reply.status, 'ok');
    assert.ok(content.equals(sample('sunset.png')));
    assert.equal(reply.quota, { limit: 3, used: 1, remaining: 2 });
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test('[P-34] a malformed have is bad-request, not fatal, and costs nothing', async () => {
  const server = await startTestServer({ codes: [108] });
  const raw = await welcomed(server.port);
  try {
    const hash = sha(sample('sunset.png'));
    const malformed = [hash.toUpperCase(), hash.slice(1), 42, null, `${hash}0`];
    for (const [index, have] of malformed.entries()) {
      raw.sendJson(MessageType.REQUEST, { id: index, command: 'get', image: 'sunset.png', have });
      const error = await raw.nextJson(MessageType.ERROR);
      assert.equal([error.id, error.code, error.fatal], [index, 'bad-request', false], String(have));
      assert.equal(error.quota, { limit: 3, used: 0, remaining: 3 });
    }
    raw.sendJson(MessageType.REQUEST, { id: 9, command: 'get', image: 'sunset.png', have: hash });
    assert.is((await raw.nextJson(MessageType.REPLY)).status, 'not-modified', 'the connection is still open');
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test('[P-35] the client cache: downloaded once, then not-modified; the file is left alone; the quota unchanged', async () => {
  const live = await startLive([108]);
  const client = await ImgcacheClient.connect({ port: live.test.port });
  try {
    const cache = await LocalCache.open(live.downloads, `127.0.0.1:${live.test.port}`);
    const progress: Array<[number, number]> = [];
    const first = await cache.fetch(client, 'terrain-large.png', (received, total) => progress.push([received, total]));
    assert.is(first.status, 'downloaded');
    assert.ok(readFileSync(first.path).equals(sample('terrain-large.png')));
    assert.equal(first.quota, { limit: 3, used: 1, remaining: 2 });
    const total = sample('terrain-large.png').length;
    assert.ok(progress.length > 1, 'an image larger than a frame reports progress per DATA frame');
    assert.equal(progress.at(-1), [total, total]);

    const file = statSync(first.path);
    const second = await cache.fetch(client, 'terrain-large.png');
    assert.is(second.status, 'not-modified');
    assert.equal(second.entry, first.entry);
    assert.equal(second.quota, { limit: 3, used: 1, remaining: 2 });
    assert.equal(client.quota, { limit: 3, used: 1, remaining: 2 });
    const after = statSync(first.path);
    assert.equal([after.ino, after.mtimeMs], [file.ino, file.mtimeMs], 'the file was not rewritten');
  } finally {
    await client.exit();
    await live.stop();
  }
});

test('a manifest deleted or corrupted by hand is rebuilt from the files, and the next get is still not-modified', async () => {
  const live = await startLive([108]);
  const client = await ImgcacheClient.connect({ port: live.test.port });
  try {
    const server = `127.0.0.1:${live.test.port}`;
    const first = await (await LocalCache.open(live.downloads, server)).fetch(client, 'sunset.png');
    assert.is(first.status, 'downloaded');
    const manifest = path.join(live.downloads, MANIFEST_FILE);

    unlinkSync(manifest);
    const rebuilt = await LocalCache.open(live.downloads, server);
    assert.is(rebuilt.rebuilt, true);
    assert.is(rebuilt.entry('sunset.png')?.sha256, first.entry.sha256);
    assert.is((await rebuilt.fetch(client, 'sunset.png')).status, 'not-modified');

    writeFileSync(manifest, '{"format": "imgcache-client-manifest", "version": 1, "images": [{"name": 7}');
    const repaired = await LocalCache.open(live.downloads, server);
    assert.is(repaired.rebuilt, true);
    assert.is((await repaired.fetch(client, 'sunset.png')).status, 'not-modified');
    assert.is(JSON.parse(readFileSync(manifest, 'utf8')).images[0].sha256, first.entry.sha256);
    assert.equal(client.quota, { limit: 3, used: 1, remaining: 2 }, 'only the first transfer counted');
  } finally {
    await client.exit();
    await live.stop();
  }
});

test('[P-36] with the quota exhausted an unchanged image is still revalidated; a changed one is refused, fatal', async () => {
  const live = await startLive([108]);
  const client = await ImgcacheClient.connect({ port: live.test.port });
  try {
    const cache = await LocalCache.open(live.downloads, `127.0.0.1:${live.test.port}`);
    for (const name of ['sunset.png', 'mandelbrot.png', 'checkerboard-dice.png']) await cache.fetch(client, name);
    assert.equal(client.quota, { limit: 3, used: 3, remaining: 0 });

    const revalidated = await cache.fetch(client, 'sunset.png');
    assert.is(revalidated.status, 'not-modified');
    assert.equal(revalidated.quota, { limit: 3, used: 3, remaining: 0 });

    const changed = nextChange(live.test.server.catalog, 'mandelbrot.png', 'changed');
    writeFileSync(path.join(live.images, 'mandelbrot.png'), sample('checkerboard-dice.png'));
    await changed;
    const refused = await cache.fetch(client, 'mandelbrot.png').catch((error: unknown) => error);
    assert.instance(refused, ServerError);
    assert.equal([(refused as ServerError).code, (refused as ServerError).fatal], ['quota-exhausted', true]);
    assert.ok(
      readFileSync(path.join(live.downloads, 'mandelbrot.png')).equals(sample('mandelbrot.png')),
      'the local copy is untouched',
    );
    assert.is(cache.stateOf({ name: 'mandelbrot.png', sha256: sha(sample('checkerboard-dice.png')) }), 'stale');
  } finally {
    client.close();
    await live.stop();
  }
});

test('[P-32] [P-35] the history records not-modified answers; usage lists them with outcome not-modified', async () => {
  const live = await startLive([950]);
  const client = await ImgcacheClient.connect({ port: live.test.port });
  try {
    const cache = await LocalCache.open(live.downloads, `127.0.0.1:${live.test.port}`);
    await cache.fetch(client, 'sunset.png');
    await cache.fetch(client, 'sunset.png');
    await cache.fetch(client, 'sunset.png');
    const usage = (await client.usage()) as UsageDocument;
    const me = usage.clients.find((entry) => entry.name === client.welcome.session.name);
    assert.equal(
      me?.requests.map((request) => [request.image, request.outcome]),
      [
        ['sunset.png', 'served'],
        ['sunset.png', 'not-modified'],
        ['sunset.png', 'not-modified'],
      ],
    );
    assert.equal(me?.quota, { limit: 20, used: 1 });
    await client.exit();
    const history = openDatabase(live.test.database, { readonly: true });
    try {
      const recorded = readEvents(history).filter((event) => event.type === 'image-not-modified');
      assert.equal(
        recorded.map((event) => event.data),
        [
          { requestId: 2, image: 'sunset.png', sha256: sha(sample('sunset.png')) },
          { requestId: 3, image: 'sunset.png', sha256: sha(sample('sunset.png')) },
        ],
      );
    } finally {
      history.close();
    }
  } finally {
    client.close();
    await live.stop();
  }
});

test('the CLI: get says not modified, list marks each image, refresh re-downloads only what changed', async () => {
  const live = await startLive([950, 950, 950, 950, 950, 950]);
  try {
    const run = async (...args: string[]) => {
      const lines: string[] = [];
      const status = await main([...args, '--port', String(live.test.port), '--cache-dir', live.downloads], (line) =>
        lines.push(line),
      );
      return { status, text: lines.join('\n') };
    };
    assert.is((await run('get', 'sunset.png', 'mandelbrot.png')).status, 0);
    const again = await run('get', 'sunset.png');
    assert.match(
      again.text,
      /^not modified: sunset\.png \(sha256 [0-9a-f]{12}…\) is current in .*; 20 of 20 requests left$/,
    );

    const changed = nextChange(live.test.server.catalog, 'sunset.png', 'changed');
    writeFileSync(path.join(live.images, 'sunset.png'), sample('checkerboard-dice.png'));
    await changed;

    const list = await run('list');
    assert.match(list.text, /checkerboard-dice\.png .* not downloaded$/m);
    assert.match(list.text, /mandelbrot\.png .* current$/m);
    assert.match(list.text, /sunset\.png .* changed on the server$/m);

    const refresh = await run('refresh');
    assert.is(refresh.status, 0, refresh.text);
    assert.match(refresh.text, /^refreshed 2 images: 1 not modified, 1 changed and downloaded$/m);
    assert.match(refresh.text, /^ {2}sunset\.png +changed on the server: downloaded/m);
    assert.match(refresh.text, /^19 of 20 requests left$/m);
    assert.ok(readFileSync(path.join(live.downloads, 'sunset.png')).equals(sample('checkerboard-dice.png')));

    const json = await run('refresh', '--json');
    const document = JSON.parse(json.text) as { images: Array<{ name: string; status: string }> };
    assert.equal(
      document.images.map((image) => [image.name, image.status]),
      [
        ['mandelbrot.png', 'not-modified'],
        ['sunset.png', 'not-modified'],
      ],
    );

    const removed = nextChange(live.test.server.catalog, 'mandelbrot.png', 'removed');
    unlinkSync(path.join(live.images, 'mandelbrot.png'));
    await removed;
    const gone = await run('refresh');
    assert.is(gone.status, 0, 'an image gone from the server is news, not a failure');
    assert.match(
      gone.text,
      /^refreshed 2 images: 1 not modified, 0 changed and downloaded, 1 no longer on the server$/m,
    );
    assert.match(gone.text, /^ {2}mandelbrot\.png +no longer on the server \(the local copy is kept\)$/m);
  } finally {
    await live.stop();
  }
});

test.run();
