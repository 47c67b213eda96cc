/**
 * Careless and hostile clients against a real server: slowloris handshakes, a frozen reader, clients vanishing
 * mid-transfer, probing image names, a flood of connections, and a shutdown with a transfer in flight. The server
 * stays up, stays fair to the others, and records what happened.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import type { NewEvent } from '../db/events.ts';
import { encodeFrameHeader, MessageType, RejectedError } from '../src/protocol/index.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { eventually, makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';

const LARGE = 'terrain-large.png';
const LARGE_BYTES = readFileSync(path.join(SAMPLE_IMAGES, LARGE)).length;
/** An image far larger than what the kernel's socket buffers hold, so a reader that stops reading blocks it. */
const HUGE = 'huge.png';

function cacheWithHugeImage(): string {
  const folder = makeTemporaryFolder('imgcache-cache-');
  for (const name of [LARGE, 'sunset.png']) copyFileSync(path.join(SAMPLE_IMAGES, name), path.join(folder, name));
  writeFileSync(path.join(folder, HUGE), randomBytes(32 * 1024 * 1024));
  return folder;
}

function closedWith(reason: string): (event: NewEvent) => boolean {
  return (event) => event.type === 'session-closed' && event.data.reason === reason;
}

/** Asks for the huge image and then reads nothing. */
async function frozenReader(port: number): Promise<RawConnection> {
  const peer = await RawConnection.open(port);
  peer.hello();
  await peer.nextJson(MessageType.WELCOME);
  peer.socket.pause();
  peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: HUGE });
  return peer;
}

test('slowloris: three handshake-less sockets hold no session slot [P-43]; a real client gets in, they are cut at the deadline', async () => {
  const running = await startTestServer({ capacity: 3, handshakeTimeoutMs: 400 });
  try {
    const silent = await Promise.all([1, 2, 3].map(() => RawConnection.open(running.port)));
    // One of them trickles a HELLO a byte at a time but never finishes it: the deadline counts from the connect.
    const hello = Buffer.concat([encodeFrameHeader(MessageType.HELLO, 16), Buffer.from('{"versions":[1]}')]);
    silent[0]?.send(hello.subarray(0, 3));
    const client = await ImgcacheClient.connect({ port: running.port });
    assert.ok(client.welcome.session.name, 'admitted while the three are still in their handshake');
    const rejects = await Promise.all(silent.map((peer) => peer.nextJson(MessageType.REJECT)));
    assert.equal(
      rejects.map((reject) => reject.reason),
      ['handshake-timeout', 'handshake-timeout', 'handshake-timeout'],
    );
    await client.exit();
    const timeouts = running.events.filter(
      (event) => event.type === 'connection-rejected' && event.data.reason === 'handshake-timeout',
    );
    assert.is(timeouts.length, 3, 'each handshake timeout is in the history');
  } finally {
    await running.stop();
  }
});

test('a frozen reader is cut off after the drain deadline while another client downloads at full speed', async () => {
  const running = await startTestServer({
    capacity: 3,
    codes: [950],
    drainTimeoutMs: 1_500,
    cacheDir: cacheWithHugeImage(),
  });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const frozen = await frozenReader(running.port);
    const cutOff = running.waitForEvent(closedWith('drain-timeout'));
    const other = await ImgcacheClient.connect({ port: running.port });
    let cutOffYet = false;
    void cutOff.then(() => {
      cutOffYet = true;
    });
    for (let round = 0; round < 5; round++) await downloadImage(other, LARGE, folder);
    assert.is(cutOffYet, false, 'the other client finished five large downloads while the frozen one still held on');
    await cutOff;
    assert.is(running.server.stats().sessions, 1, "the frozen reader's slot is free");
    frozen.destroy(); // a frozen client never reads the close either
    await other.exit();
  } finally {
    await running.stop();
  }
});

test('a client that vanishes mid-transfer frees its slot at once, and its close is recorded with the reason', async () => {
  const running = await startTestServer({ capacity: 1, codes: [950], cacheDir: cacheWithHugeImage() });
  try {
    for (const [vanish, reason] of [
      [(socket: net.Socket) => socket.resetAndDestroy(), 'connection-reset'],
      [(socket: net.Socket) => socket.destroy(), 'client-closed'],
    ] as const) {
      const peer = await frozenReader(running.port);
      await running.waitForNextEvent((event) => event.type === 'image-served');
      const closed = running.waitForNextEvent((event) => event.type === 'session-closed');
      vanish(peer.socket);
      const event = await closed;
      assert.ok(
        [reason, 'connection-reset', 'client-closed'].includes(String((event.data as { reason: string }).reason)),
      );
      const next = await ImgcacheClient.connect({ port: running.port });
      await next.exit();
    }
    const reasons = running.events
      .filter((event) => event.type === 'session-closed')
      .map((event) => (event.data as { reason: string }).reason);
    assert.ok(reasons.includes('connection-reset'), reasons.join(','));
  } finally {
    await running.stop();
  }
});

test('names that try to leave the cache folder are answered image-not-found and recorded as probes', async () => {
  const cache = makeTemporaryFolder('imgcache-cache-');
  copyFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'), path.join(cache, 'sunset.png'));
  symlinkSync('/etc/passwd', path.join(cache, 'passwd.png')); // a link pointing outside the folder
  mkdirSync(path.join(cache, 'nested'));
  copyFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'), path.join(cache, 'nested', 'inner.png'));
  const running = await startTestServer({ cacheDir: cache, codes: [950] });
  try {
    const client = await ImgcacheClient.connect({ port: running.port });
    assert.equal(
      (await client.list()).images.map((image) => image.name),
      ['sunset.png'],
      'links and sub-folders are not served',
    );
    const probes: Array<[string, string | undefined]> = [
      ['../README.md', 'path-traversal'],
      ['/etc/passwd', 'absolute-path'],
      ['..\\..\\windows\\win.ini', 'path-traversal'],
      ['%2e%2e%2fREADME.md', 'encoded-path'],
      ['sunset.png\0.txt', 'nul-byte'],
      ['passwd.png', undefined],
      ['nested/inner.png', 'path-separator'],
      ['x'.repeat(3000), 'too-long'],
      ['sunset.pn\u0261', 'unicode-lookalike'],
      ['ｓunset.png', 'unicode-lookalike'],
    ];
    for (const [name] of probes) {
      const error = await client.getInto(name, { write: () => undefined }).then(
        () => null,
        (caught: unknown) => caught as { body?: { code: string; fatal: boolean } },
      );
      assert.equal([error?.body?.code, error?.body?.fatal], ['image-not-found', false], JSON.stringify(name));
    }
    assert.is(client.quota.used, 0, 'probes cost nothing');
    await client.exit();
    const refusals = running.events.filter((event) => event.type === 'request-refused');
    assert.is(refusals.length, probes.length, 'every attempt is in the history');
    refusals.forEach((event, index) => {
      const data = event.data as { suspicious?: string; image?: string; imageLength?: number };
      assert.is(data.suspicious, probes[index]?.[1], `label of ${JSON.stringify(probes[index]?.[0])}`);
    });
    const long = refusals[7]?.data as { image: string; imageLength: number };
    assert.equal([long.image.length, long.imageLength], [256, 3000], 'a huge name is cut in the record');
  } finally {
    await running.stop();
  }
});

test('a flood of connections beyond capacity is rejected while admitted clients keep downloading', async () => {
  const running = await startTestServer({ capacity: 3, codes: [950] });
  const folder = makeTemporaryFolder('imgcache-client-');
  try {
    const workers = await Promise.all([1, 2, 3].map(() => ImgcacheClient.connect({ port: running.port })));
    let downloads = 0;
    let flooding = true;
    const downloading = Promise.all(
      workers.map(async (client, index) => {
        for (let round = 0; round < 20 && (flooding || round < 3); round++) {
          await downloadImage(client, 'mandelbrot.png', path.join(folder, String(index)));
          downloads += 1;
        }
      }),
    );
    const attempts = 1_000;
    let rejected = 0;
    for (let wave = 0; wave < attempts / 100; wave++) {
      const outcomes = await Promise.all(
        Array.from({ length: 100 }, () =>
          ImgcacheClient.connect({ port: running.port }).then(
            (client) => {
              client.close();
              return 'admitted';
            },
            (error: unknown) => (error instanceof RejectedError ? error.reject.reason : String(error)),
          ),
        ),
      );
      rejected += outcomes.filter((outcome) => outcome === 'server-full').length;
    }
    flooding = false;
    await downloading;
    assert.is(rejected, attempts, 'every attempt beyond capacity is rejected as server-full');
    assert.ok(downloads >= 6, `${downloads} downloads completed during the flood`);
    await Promise.all(workers.map((client) => client.exit()));
    // Every flood connection is released: nothing leaks per rejected connection.
    await eventually(() => running.server.stats().connections === 0, 'every connection released');
  } finally {
    await running.stop();
  }
});

test('shutdown: the transfer in flight finishes, then the client is told, and every close is recorded [P-28]', async () => {
  const running = await startTestServer({ codes: [950], shutdownGraceMs: 1_000 });
  const peer = await RawConnection.open(running.port);
  peer.hello();
  await peer.nextJson(MessageType.WELCOME);
  peer.socket.pause();
  peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: LARGE });
  await running.waitForEvent((event) => event.type === 'image-served');
  const stopping = running.server.close();
  peer.socket.resume();
  const reply = await peer.nextJson(MessageType.REPLY);
  assert.is(reply.bytes, LARGE_BYTES);
  let received = 0;
  for (let frame = await peer.next(); frame?.type === MessageType.DATA; frame = await peer.next()) {
    received += frame.body.length;
    if (received === LARGE_BYTES) break;
  }
  assert.is(received, LARGE_BYTES, 'the whole image arrived');
  await peer.nextJson(MessageType.END);
  peer.received(1); // [P-40]
  const notice = await peer.nextJson(MessageType.NOTICE);
  assert.equal([notice.kind, notice.closing], ['shutting-down', true]);
  await stopping;
  assert.ok(running.events.some(closedWith('server-shutdown')));
  await running.stop();
});

test('shutdown: a reader frozen past the grace period is dropped, and its close is recorded', async () => {
  const running = await startTestServer({
    codes: [950],
    shutdownGraceMs: 300,
    drainTimeoutMs: 60_000,
    cacheDir: cacheWithHugeImage(),
  });
  const frozen = await frozenReader(running.port);
  await running.waitForEvent((event) => event.type === 'image-served');
  await running.server.close();
  assert.ok(running.events.some(closedWith('shutdown-deadline')));
  frozen.destroy();
  await running.stop();
});

test.run();
