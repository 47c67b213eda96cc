/**
 * [P-70] Catalog changes pushed to sessions over real sockets: a NOTICE catalog-changed, not closing, between answers
 * only (never inside a stream), at most one per session per second, not recorded, and not activity (the idle timeout
 * [P-27] and the reclaim of idle sessions [P-44] still come). Each test waits for the catalog's own events and the
 * server's frames, never for a fixed time.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerConfig } from '../src/config.ts';
import { MessageType, parseJsonBody } from '../src/protocol/index.ts';
import { type LiveServer, nextChange, startLiveServer } from './helpers/live-images.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { SAMPLE_IMAGES } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

function startLive(options: Partial<Omit<ServerConfig, 'codes'>> = {}, codes = [950]): Promise<LiveServer> {
  return startLiveServer({ codes, catalogRescanMs: 50, ...options });
}

/** A raw session, admitted: its WELCOME read. */
async function session(port: number): Promise<RawConnection> {
  const raw = await RawConnection.open(port);
  raw.hello();
  await within(raw.nextJson(MessageType.WELCOME), 'the WELCOME');
  return raw;
}

/** Copies a sample image into the served folder under `name`, and waits until the catalog has it. */
async function addImage(live: LiveServer, name: string): Promise<void> {
  const added = nextChange(live.test.server.catalog, name, 'added');
  copyFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'), path.join(live.images, name));
  await added;
}

async function nextFrame(raw: RawConnection, what: string) {
  const frame = await within(raw.next(), what);
  if (!frame) throw new Error(`the connection closed before ${what}`);
  return frame;
}

test('[P-70] an image added to the folder is told by a NOTICE catalog-changed, not closing, and not recorded', async () => {
  const live = await startLive();
  try {
    const raw = await session(live.test.port);
    raw.sendJson(MessageType.REQUEST, { id: 1, command: 'list' });
    const first = await within(raw.nextJson(MessageType.REPLY), 'the first list');
    assert.is((first.images as unknown[]).length, 4);
    const recordedBefore = live.test.events.length;

    await addImage(live, 'new-image.png');
    const notice = await within(raw.nextJson(MessageType.NOTICE), 'the NOTICE');
    assert.is(notice.kind, 'catalog-changed');
    assert.is(notice.closing, false);
    assert.type(notice.message, 'string');
    // [P-70] it answers no request and changes nothing: not in the history
    assert.is(live.test.events.length, recordedBefore, 'nothing recorded for the NOTICE');

    raw.sendJson(MessageType.REQUEST, { id: 2, command: 'list' });
    const second = await within(raw.nextJson(MessageType.REPLY), 'the list after the NOTICE');
    const names = (second.images as Array<{ name: string }>).map((image) => image.name);
    assert.ok(names.includes('new-image.png'), 'the new image is listed');
    raw.destroy();
  } finally {
    await live.stop();
  }
});

test('[P-70] [P-29] a change seen during a stream is told after its END, never inside it', async () => {
  const live = await startLive({ maxFrameBytes: 4096, memoryBudgetBytes: 1_048_576 });
  // An image far larger than what the kernel's buffers of a connection hold: while the client does not read, its
  // stream cannot reach its END.
  writeFileSync(path.join(live.images, 'big.png'), Buffer.alloc(32 * 1_048_576, 7));
  try {
    await within(
      new Promise<void>((resolve) => {
        if (live.test.server.catalog.get('big.png')) return resolve();
        nextChange(live.test.server.catalog, 'big.png', 'added').then(() => resolve());
      }),
      'big.png catalogued',
    );
    const raw = await session(live.test.port);
    raw.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'big.png' });
    const reply = await within(raw.nextJson(MessageType.REPLY), 'the REPLY of the get');
    assert.is(reply.stream, true);
    raw.socket.pause(); // the client stops reading in the middle of the stream
    await addImage(live, 'during-the-stream.png');
    raw.socket.resume();

    const { content, end } = await within(raw.readStream(1), 'the whole stream, DATA and END only', 60_000);
    assert.is(content.length, 32 * 1_048_576);
    assert.is(end.bytes, content.length);
    const after = await nextFrame(raw, 'the NOTICE after the END');
    assert.is(after.type, MessageType.NOTICE);
    assert.is(parseJsonBody(after.body).kind, 'catalog-changed');
    raw.destroy();
  } finally {
    await live.stop();
  }
});

test('[P-70] changes within a second are told by one NOTICE, at most one per second', async () => {
  const live = await startLive();
  try {
    const raw = await session(live.test.port);
    await addImage(live, 'first.png');
    await within(raw.nextJson(MessageType.NOTICE), 'the first NOTICE');
    const firstAt = performance.now();

    // Two more changes, seen right after the first NOTICE went out: one NOTICE tells both, a second after the first.
    await Promise.all([addImage(live, 'second.png'), addImage(live, 'third.png')]);
    const seenAt = performance.now();
    const notice = await within(raw.nextJson(MessageType.NOTICE), 'the second NOTICE');
    const secondAt = performance.now();
    assert.is(notice.kind, 'catalog-changed');
    assert.ok(seenAt < secondAt, 'both changes were seen before the second NOTICE');
    assert.ok(secondAt - firstAt >= 900, `the second NOTICE came ${Math.round(secondAt - firstAt)} ms after the first`);

    // Nothing more is owed: the next frame answers the next request.
    raw.sendJson(MessageType.REQUEST, { id: 1, command: 'list' });
    const reply = await within(raw.nextJson(MessageType.REPLY), 'the list, with no NOTICE before it');
    const names = (reply.images as Array<{ name: string }>).map((image) => image.name);
    assert.ok(names.includes('second.png') && names.includes('third.png'));
    raw.destroy();
  } finally {
    await live.stop();
  }
});

test('[P-70] [P-27] a session that only hears of changes still idles out, on time', async () => {
  const idleTimeoutMs = 1500;
  const live = await startLive({ idleTimeoutMs });
  try {
    const raw = await session(live.test.port);
    const welcomedAt = performance.now();
    await addImage(live, 'while-idle.png');
    const notice = await within(raw.nextJson(MessageType.NOTICE), 'the catalog-changed NOTICE');
    assert.is(notice.kind, 'catalog-changed');
    const toldAt = performance.now();
    assert.ok(toldAt - welcomedAt < idleTimeoutMs, 'told of the change before the idle timeout');

    const closing = await within(raw.nextJson(MessageType.NOTICE), 'the idle-timeout NOTICE');
    const closedAt = performance.now();
    assert.is(closing.kind, 'idle-timeout');
    assert.is(closing.closing, true);
    // Counted from the WELCOME, the last answer: had the NOTICE been activity, it would come idleTimeoutMs after it.
    assert.ok(
      closedAt - toldAt < idleTimeoutMs,
      `closed ${Math.round(closedAt - toldAt)} ms after the NOTICE, ${Math.round(closedAt - welcomedAt)} ms after the WELCOME`,
    );
    const closed = await within(
      live.test.waitForEvent((event) => event.type === 'session-closed'),
      'the close on record',
    );
    assert.is((closed.data as { reason: string }).reason, 'idle-timeout');
    raw.destroy();
  } finally {
    await live.stop();
  }
});

test('[P-70] [P-44] a session that hears of changes is still reclaimed for a client turned away, on time', async () => {
  const reclaimIdleAfterMs = 600;
  const live = await startLive({ capacity: 1, reclaimIdleAfterMs }, [950, 951]);
  try {
    const raw = await session(live.test.port);
    await addImage(live, 'reclaim.png');
    await within(raw.nextJson(MessageType.NOTICE), 'the catalog-changed NOTICE');
    const toldAt = performance.now();

    // Clients turned away until one finds an idle session reclaimed for it (bounded in count and time).
    let reclaimedAt: number | null = null;
    for (let attempt = 0; attempt < 100 && reclaimedAt === null; attempt++) {
      const waiting = await RawConnection.open(live.test.port);
      const reject = await within(waiting.nextJson(MessageType.REJECT), 'the REJECT of a client turned away');
      waiting.destroy();
      assert.is(reject.reason, 'server-full');
      if (reject.retryAfterMs === 0) reclaimedAt = performance.now();
      else await new Promise((resolve) => setTimeout(resolve, 20)); // the next look
    }
    if (reclaimedAt === null) throw new Error('the idle session was never reclaimed');
    // Idle counted from the WELCOME: had the NOTICE been activity, the reclaim would come reclaimIdleAfterMs after it.
    assert.ok(
      reclaimedAt - toldAt < reclaimIdleAfterMs,
      `reclaimed ${Math.round(reclaimedAt - toldAt)} ms after the NOTICE`,
    );
    const closing = await within(raw.nextJson(MessageType.NOTICE), 'the reclaim NOTICE');
    assert.is(closing.kind, 'idle-timeout');
    assert.is(closing.closing, true);
    const closed = await within(
      live.test.waitForEvent((event) => event.type === 'session-closed'),
      'the close on record',
    );
    assert.is((closed.data as { reason: string }).reason, 'idle-reclaimed');
    raw.destroy();
  } finally {
    await live.stop();
  }
});

test.run();
