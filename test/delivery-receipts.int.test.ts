/**
 * Delivery [P-40] to [P-42]: an answer counts as delivered when the client says it has read it (RECEIVED), not when
 * the kernel took its bytes. A reader that stops is cut at the drain deadline even when the rest of the answer fits
 * in the socket buffers; a slow reader that keeps reading is not; a transfer that does not end whole is on record
 * with the bytes it sent, and does not count toward the quota. Real server, real sockets, real SQLite.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import type { NewEvent } from '../db/events.ts';
import { encodeFrame, encodeJsonFrame, MessageType } from '../src/protocol/index.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const SMALL = 'sunset.png';
/** Far larger than what the kernel's socket buffers hold on both sides of a loopback connection. */
const HUGE = 'huge.png';
const HUGE_CONTENT = randomBytes(32 * 1024 * 1024);
const HUGE_SHA256 = createHash('sha256').update(HUGE_CONTENT).digest('hex');

function cacheWithHugeImage(): string {
  const folder = makeTemporaryFolder('imgcache-cache-');
  copyFileSync(path.join(SAMPLE_IMAGES, SMALL), path.join(folder, SMALL));
  writeFileSync(path.join(folder, HUGE), HUGE_CONTENT);
  return folder;
}

function closedWith(reason: string): (event: NewEvent) => boolean {
  return (event) => event.type === 'session-closed' && event.data.reason === reason;
}

/**
 * Reads a stream slowly: the socket is paused for `pauseMs` after every `burstBytes` taken. Returns the content and
 * the time it took; sends the RECEIVED once the END is read.
 */
async function readSlowly(
  peer: RawConnection,
  id: number,
  burstBytes: number,
  pauseMs: number,
): Promise<{ content: Buffer; ms: number }> {
  const started = performance.now();
  let sinceLastPause = 0;
  const throttle = (chunk: Buffer) => {
    sinceLastPause += chunk.length;
    if (sinceLastPause < burstBytes) return;
    sinceLastPause = 0;
    peer.socket.pause();
    setTimeout(() => peer.socket.resume(), pauseMs);
  };
  peer.socket.on('data', throttle);
  try {
    const { content } = await peer.readStream(id);
    return { content, ms: performance.now() - started };
  } finally {
    peer.socket.off('data', throttle);
  }
}

/** The types of the frames before the next ERROR, and that ERROR's body (null if the connection closed first). */
async function untilError(peer: RawConnection): Promise<{ types: number[]; error: Record<string, unknown> | null }> {
  const types: number[] = [];
  let frame = await peer.next();
  for (; frame && frame.type !== MessageType.ERROR; frame = await peer.next()) types.push(frame.type);
  return { types, error: frame ? (JSON.parse(frame.body.toString('utf8')) as Record<string, unknown>) : null };
}

test('[P-41] a client that reads the REPLY of a small image and then stops reading is cut at the drain deadline', async () => {
  // The whole image fits in the socket buffers: every write completes at once. Only the missing RECEIVED tells.
  const running = await startTestServer({ drainTimeoutMs: 300, idleTimeoutMs: 300_000 });
  try {
    const peer = await RawConnection.admitted(running.port);
    const cut = running.waitForEvent(closedWith('drain-timeout'));
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: SMALL });
    const reply = await peer.nextJson(MessageType.REPLY);
    assert.is(reply.status, 'ok');
    peer.socket.pause(); // reads nothing more, never sends RECEIVED
    await within(cut, 'the session closed with drain-timeout', 5_000);
    assert.ok(
      running.events.some((event) => event.type === 'image-served'),
      'its END was written: the image counts',
    );
    assert.not.ok(running.events.some((event) => event.type === 'transfer-incomplete'));
    await within(peer.closed, 'the connection dropped', 5_000);
    assert.is(running.server.stats().sessions, 0, 'its slot is free');
  } finally {
    await running.stop();
  }
});

test('[P-40] a client that sends RECEIVED after each END keeps its session past the drain deadline', async () => {
  const running = await startTestServer({ drainTimeoutMs: 200, codes: [950] });
  try {
    const peer = await RawConnection.admitted(running.port);
    for (let id = 1; id <= 3; id++) {
      peer.sendJson(MessageType.REQUEST, { id, command: 'get', image: SMALL });
      await peer.nextJson(MessageType.REPLY);
      const { content } = await peer.readStream(id);
      assert.equal(content, readFileSync(path.join(SAMPLE_IMAGES, SMALL)));
    }
    // A usage stream too: the client reads it and acknowledges it like an image.
    peer.sendJson(MessageType.REQUEST, { id: 4, command: 'usage' });
    await peer.nextJson(MessageType.REPLY);
    await peer.readStream(4);
    // Another client that never acknowledges is cut at the drain deadline: by then that deadline has passed for ours.
    const stalled = await RawConnection.admitted(running.port);
    const cut = running.waitForEvent(closedWith('drain-timeout'));
    stalled.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: SMALL });
    await within(cut, 'the other client cut', 5_000);
    peer.sendJson(MessageType.REQUEST, { id: 6, command: 'list' });
    assert.is((await peer.nextJson(MessageType.REPLY)).id, 6);
    assert.is(running.events.filter(closedWith('drain-timeout')).length, 1, 'only the client without RECEIVED');
    stalled.destroy();
    peer.sendJson(MessageType.REQUEST, { id: 7, command: 'exit' });
    await peer.nextJson(MessageType.REPLY);
  } finally {
    await running.stop();
  }
});

test('[P-41] a slow reader that keeps taking bytes is not cut, however long the whole download takes', async () => {
  const running = await startTestServer({ drainTimeoutMs: 1_000, codes: [950], cacheDir: cacheWithHugeImage() });
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: HUGE });
    await peer.nextJson(MessageType.REPLY);
    // Pauses of 300 ms, each well within the deadline, every 4 MiB: the whole download lasts several deadlines.
    const { content, ms } = await within(readSlowly(peer, 1, 4 * 1024 * 1024, 300), 'the slow download', 30_000);
    assert.is(createHash('sha256').update(content).digest('hex'), HUGE_SHA256);
    assert.ok(ms > 2_000, `the download took ${Math.round(ms)} ms, more than twice the drain deadline`);
    peer.sendJson(MessageType.REQUEST, { id: 2, command: 'list' });
    assert.is((await peer.nextJson(MessageType.REPLY)).id, 2, 'the session goes on');
    assert.not.ok(running.events.some(closedWith('drain-timeout')));
  } finally {
    await running.stop();
  }
});

test('[P-40] [P-41] a reader slower than the kernel shows, reporting its progress, is not cut', async () => {
  const running = await startTestServer({ drainTimeoutMs: 1_000, codes: [950], cacheDir: cacheWithHugeImage() });
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: HUGE });
    await peer.nextJson(MessageType.REPLY);
    // 128 KiB every 200 ms: the server's kernel wakes it only once about half its send buffer (megabytes on
    // loopback) is free, seconds apart at this pace, so only the progress receipts show that this reader reads.
    let taken = 0;
    const report = setInterval(() => peer.sendJson(MessageType.RECEIVED, { id: 1, bytes: taken }), 250);
    const throttle = (chunk: Buffer) => {
      taken += chunk.length;
      if (taken >= 3 * 1024 * 1024) return; // enough: the rest at full speed
      peer.socket.pause();
      setTimeout(() => peer.socket.resume(), (200 * chunk.length) / (128 * 1024));
    };
    peer.socket.on('data', throttle);
    try {
      const { content } = await within(peer.readStream(1), 'the slow download', 30_000);
      assert.is(createHash('sha256').update(content).digest('hex'), HUGE_SHA256);
    } finally {
      clearInterval(report);
      peer.socket.off('data', throttle);
    }
    peer.sendJson(MessageType.REQUEST, { id: 2, command: 'list' });
    assert.is((await peer.nextJson(MessageType.REPLY)).id, 2, 'the session goes on');
    assert.not.ok(running.events.some(closedWith('drain-timeout')));
  } finally {
    await running.stop();
  }
});

/**
 * A slow link with backpressure: what the server sends passes at about `bytesPerSecond` (the proxy stops reading
 * the server meanwhile) until `slowBytes` have passed, then at full speed; what the client sends passes at once.
 */
async function slowLink(port: number, bytesPerSecond: number, slowBytes: number): Promise<net.Server> {
  const proxy = net.createServer((downstream) => {
    const upstream = net.connect({ host: '127.0.0.1', port });
    let passed = 0;
    upstream.on('data', (chunk: Buffer) => {
      downstream.write(chunk);
      passed += chunk.length;
      if (passed > slowBytes) return;
      upstream.pause();
      setTimeout(() => upstream.resume(), (1000 * chunk.length) / bytesPerSecond);
    });
    upstream.on('end', () => downstream.end());
    downstream.pipe(upstream);
    for (const side of [upstream, downstream]) {
      side.on('error', () => {
        upstream.destroy();
        downstream.destroy();
      });
    }
    downstream.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return proxy;
}

test('[P-40] [P-41] the client library reports its progress: a download over a slow link is not cut', async () => {
  const running = await startTestServer({ drainTimeoutMs: 1_000, codes: [950], cacheDir: cacheWithHugeImage() });
  const link = await slowLink(running.port, 640 * 1024, 3 * 1024 * 1024);
  const client = await ImgcacheClient.connect({ port: (link.address() as net.AddressInfo).port });
  try {
    const hash = createHash('sha256');
    await within(client.getInto(HUGE, { write: (piece) => void hash.update(piece) }), 'the slow download', 30_000);
    assert.is(hash.digest('hex'), HUGE_SHA256);
    assert.is((await client.list()).images.length, 2, 'the session goes on');
    assert.not.ok(running.events.some(closedWith('drain-timeout')));
  } finally {
    client.close();
    link.close();
    await running.stop();
  }
});

test('[P-40] a progress receipt naming no stream that awaits one is the fatal unexpected-message', async () => {
  const running = await startTestServer();
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.sendJson(MessageType.RECEIVED, { id: 9, bytes: 100 });
    const error = await peer.nextJson(MessageType.ERROR);
    assert.is(error.code, 'unexpected-message');
    await within(peer.closed, 'the server closes', 5_000);
  } finally {
    await running.stop();
  }
});

test('[P-27] a download longer than the idle timeout is not closed when its END goes out: the clock starts at its end', async () => {
  const running = await startTestServer({
    idleTimeoutMs: 400,
    drainTimeoutMs: 5_000,
    codes: [950],
    cacheDir: cacheWithHugeImage(),
  });
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: HUGE });
    await peer.nextJson(MessageType.REPLY);
    // 300 ms pauses every 2 MiB: the megabytes still in the socket buffers when the END is written take the reader
    // longer than the idle timeout.
    const { content, ms } = await within(readSlowly(peer, 1, 2 * 1024 * 1024, 300), 'the slow download', 30_000);
    assert.is(createHash('sha256').update(content).digest('hex'), HUGE_SHA256);
    assert.ok(ms > 400, `the download took ${Math.round(ms)} ms`);
    peer.sendJson(MessageType.REQUEST, { id: 2, command: 'list' });
    const answer = await peer.next();
    assert.is(answer?.type, MessageType.REPLY, `a REPLY, not ${answer?.body.toString()}`);
    assert.not.ok(running.events.some(closedWith('idle-timeout')));
    // And the idle timeout still runs once the client has said it read the stream.
    await within(running.waitForEvent(closedWith('idle-timeout')), 'closed when idle', 5_000);
  } finally {
    await running.stop();
  }
});

test('[P-42] a client that resets mid-stream leaves a transfer-incomplete with what went out; usage shows it, not counted', async () => {
  const running = await startTestServer({ codes: [950, 950], cacheDir: cacheWithHugeImage() });
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: HUGE });
    await peer.nextJson(MessageType.REPLY);
    const data = await peer.next(); // some of the image arrived
    assert.is(data?.type, MessageType.DATA);
    peer.socket.pause();
    const incomplete = running.waitForEvent((event) => event.type === 'transfer-incomplete');
    peer.socket.resetAndDestroy();
    const event = (await within(incomplete, 'transfer-incomplete on record', 5_000)) as Extract<
      NewEvent,
      { type: 'transfer-incomplete' }
    >;
    assert.is(event.data.image, HUGE);
    assert.is(event.data.requestId, 1);
    assert.is(event.data.bytes, HUGE_CONTENT.length);
    assert.ok(event.data.bytesSent < event.data.bytes, `${event.data.bytesSent} of ${event.data.bytes} bytes`);
    // At least the frame the client read went out: each frame counts once the connection took it whole, not only
    // each 4 MiB window of frames (a window the kernel had taken only in part counted nothing).
    assert.ok(
      event.data.bytesSent >= (data?.body.length ?? 0),
      `${event.data.bytesSent} bytes on record, ${data?.body.length} read by the client`,
    );
    assert.ok(['connection-reset', 'client-closed'].includes(event.data.reason), event.data.reason);
    await running.waitForEvent((closed) => closed.type === 'session-closed' && closed.session === event.session);

    // The usage document: that request is incomplete, with what it sent and why, and the quota does not count it.
    const reader = await RawConnection.admitted(running.port);
    reader.sendJson(MessageType.REQUEST, { id: 1, command: 'usage' });
    await reader.nextJson(MessageType.REPLY);
    const { content } = await reader.readStream(1);
    const usage = JSON.parse(content.toString('utf8')) as {
      clients: Array<{ quota: { used: number }; requests: Array<Record<string, unknown>> }>;
    };
    const first = usage.clients[0];
    assert.equal(first?.requests, [
      {
        image: HUGE,
        at: first?.requests[0]?.at,
        outcome: 'incomplete',
        bytes: HUGE_CONTENT.length,
        bytesSent: event.data.bytesSent,
        reason: event.data.reason,
      },
    ]);
    assert.is(first?.quota.used, 0, 'an image not delivered whole does not count');
  } finally {
    await running.stop();
  }
});

test('[P-42] [P-28] a transfer cut at the shutdown deadline is on record as incomplete', async () => {
  const running = await startTestServer({
    codes: [950],
    shutdownGraceMs: 300,
    drainTimeoutMs: 60_000,
    cacheDir: cacheWithHugeImage(),
  });
  const peer = await RawConnection.admitted(running.port);
  peer.socket.pause();
  peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: HUGE });
  await running.waitForEvent((event) => event.type === 'image-served');
  await running.server.close();
  const incomplete = running.events.find((event) => event.type === 'transfer-incomplete');
  assert.is(incomplete?.type === 'transfer-incomplete' && incomplete.data.reason, 'shutdown-deadline');
  assert.ok(incomplete?.type === 'transfer-incomplete' && incomplete.data.bytesSent < HUGE_CONTENT.length);
  const events = running.events.map((event) => event.type);
  assert.ok(events.indexOf('transfer-incomplete') < events.indexOf('session-closed'), 'before the close');
  peer.destroy();
  await running.stop();
});

test('[P-40] a RECEIVED naming no stream that awaits one is the fatal unexpected-message', async () => {
  const running = await startTestServer();
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'list' });
    await peer.nextJson(MessageType.REPLY);
    peer.received(1); // a list is no stream
    const error = await peer.nextJson(MessageType.ERROR);
    assert.is(error.code, 'unexpected-message');
    assert.is(error.fatal, true);
    await within(peer.closed, 'the server closes', 5_000);
    await running.waitForEvent(closedWith('unexpected-message'));
  } finally {
    await running.stop();
  }
});

test('[P-40] [P-41] progress receipts that claim no new bytes do not hold a stream the client does not read', async () => {
  const running = await startTestServer({ codes: [950], drainTimeoutMs: 400, cacheDir: cacheWithHugeImage() });
  let timer: NodeJS.Timeout | undefined;
  try {
    const peer = await RawConnection.admitted(running.port);
    const cut = running.waitForEvent(closedWith('drain-timeout'));
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: HUGE });
    await peer.nextJson(MessageType.REPLY);
    peer.socket.pause(); // reads nothing more
    // What an attacker sends to keep its slot: the same count again and again, then counts a few bytes apart.
    let claimed = 0;
    let sent = 0;
    timer = setInterval(() => {
      sent++;
      if (sent > 5) claimed += 1000;
      peer.sendJson(MessageType.RECEIVED, { id: 1, bytes: claimed });
    }, 50);
    await within(cut, 'cut at the drain deadline despite the receipts', 10_000);
    assert.ok(sent >= 3, `${sent} receipts were sent before the cut`);
  } finally {
    clearInterval(timer);
    await running.stop();
  }
});

test('[P-40] a progress receipt that claims more bytes than the server sent is the fatal unexpected-message', async () => {
  const running = await startTestServer({ codes: [950], cacheDir: cacheWithHugeImage() });
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: HUGE });
    await peer.nextJson(MessageType.REPLY);
    peer.sendJson(MessageType.RECEIVED, { id: 1, bytes: HUGE_CONTENT.length * 2 });
    const { error } = await untilError(peer);
    assert.equal([error?.code, error?.fatal], ['unexpected-message', true]);
    assert.match(String(error?.message), /more bytes were read than the server has sent/);
    await within(peer.closed, 'the server closes', 10_000);
  } finally {
    await running.stop();
  }
});

test('[P-40] a progress receipt whose bytes are not a count is refused in turn, after its stream, and says why', async () => {
  const running = await startTestServer({ codes: [950] });
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'terrain-large.png' });
    await peer.nextJson(MessageType.REPLY);
    peer.sendJson(MessageType.RECEIVED, { id: 1, bytes: -1 });
    const { types, error } = await untilError(peer);
    assert.is(types.at(-1), MessageType.END, 'the stream it spoke of ended whole first');
    assert.is(error?.code, 'unexpected-message');
    assert.is(error?.fatal, true);
    assert.match(String(error?.message), /progress receipt.*non-negative integer/);
    await within(peer.closed, 'the server closes', 5_000);
  } finally {
    await running.stop();
  }
});

test('[P-40] [P-5] a RECEIVED sent with the HELLO is judged as any RECEIVED: a body that is not JSON is malformed', async () => {
  const running = await startTestServer();
  try {
    const peer = await RawConnection.open(running.port);
    // In one write, so the RECEIVED is in before the WELCOME is written (found by the fuzzer).
    peer.send(
      Buffer.concat([
        encodeJsonFrame(MessageType.HELLO, { versions: [1] }),
        encodeFrame(MessageType.RECEIVED, Buffer.from('["id":0,server-full"}')),
      ]),
    );
    await peer.nextJson(MessageType.WELCOME);
    const error = await peer.nextJson(MessageType.ERROR);
    assert.is(error.code, 'malformed-message');
    assert.is(error.fatal, true);
    await within(peer.closed, 'the server closes', 5_000);
  } finally {
    await running.stop();
  }
});

test('[P-40] [P-3] a RECEIVED just before a frame over the limit is still judged as a RECEIVED', async () => {
  const running = await startTestServer();
  try {
    const peer = await RawConnection.admitted(running.port);
    // One write: the bad header makes the decoder hand back the frames before it apart (found by the fuzzer).
    peer.send(
      Buffer.concat([
        encodeFrame(MessageType.RECEIVED, Buffer.from('["id":0,server-full"}')),
        Buffer.from([0x7f, 0xff, 0xff, 0xff, MessageType.REQUEST]),
      ]),
    );
    const error = await peer.nextJson(MessageType.ERROR);
    assert.is(error.code, 'malformed-message', 'the RECEIVED is answered first, for its body');
    await within(peer.closed, 'the server closes', 5_000);
  } finally {
    await running.stop();
  }
});

test('[P-40] a RECEIVED is taken in turn: one sent with its get, in the same write, names that stream', async () => {
  const running = await startTestServer({ codes: [950] });
  try {
    const peer = await RawConnection.admitted(running.port);
    peer.send(
      Buffer.concat([
        encodeJsonFrame(MessageType.REQUEST, { id: 5, command: 'get', image: SMALL }),
        encodeJsonFrame(MessageType.RECEIVED, { id: 5 }),
        encodeJsonFrame(MessageType.REQUEST, { id: 6, command: 'list' }),
        encodeJsonFrame(MessageType.RECEIVED, { id: 5 }), // already acknowledged: names no stream awaiting one
      ]),
    );
    assert.is((await peer.nextJson(MessageType.REPLY)).id, 5);
    const rest = [];
    for (let frame = await peer.next(); frame; frame = await peer.next()) rest.push(frame.type);
    assert.equal(rest.slice(-3), [MessageType.END, MessageType.REPLY, MessageType.ERROR]);
    await running.waitForEvent(closedWith('unexpected-message'));
  } finally {
    await running.stop();
  }
});

test('[P-40] [P-16] receipts are not requests: sixteen pipelined gets with their receipts are all answered', async () => {
  const running = await startTestServer({ codes: [950] });
  try {
    const peer = await RawConnection.admitted(running.port);
    for (let id = 1; id <= 16; id++) peer.sendJson(MessageType.REQUEST, { id, command: 'get', image: SMALL });
    for (let id = 1; id <= 16; id++) {
      assert.is((await peer.nextJson(MessageType.REPLY)).id, id);
      await peer.readStream(id);
    }
    peer.sendJson(MessageType.REQUEST, { id: 17, command: 'list' });
    assert.is((await peer.nextJson(MessageType.REPLY)).id, 17);
  } finally {
    await running.stop();
  }
});

test.run();
