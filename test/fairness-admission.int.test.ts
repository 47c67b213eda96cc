/**
 * Capacity fairness [P-43] [P-44] and the shutdown window [P-28], over real sockets: the session slots go to sessions,
 * not to sockets that have not said HELLO; handshakes in progress are bounded, in all and per address; idle sessions
 * are reclaimed when a client is turned away, so that its retry gets in; a client connecting while the server stops
 * is told so with a REJECT, not refused by the kernel.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import type { NewEvent } from '../db/events.ts';
import { MessageType, RejectedError } from '../src/protocol/index.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

function closedWith(reason: string): (event: NewEvent) => boolean {
  return (event) => event.type === 'session-closed' && event.data.reason === reason;
}

async function rejection(port: number): Promise<RejectedError> {
  const error = await ImgcacheClient.connect({ port }).then(
    async (client) => {
      await client.exit();
      return null;
    },
    (caught: unknown) => caught,
  );
  assert.instance(error, RejectedError);
  return error as RejectedError;
}

test('[P-43] three silent sockets hold no slot: a real client gets in at once, long before their deadline', async () => {
  const running = await startTestServer({ capacity: 3, handshakeTimeoutMs: 60_000 });
  try {
    const silent = await Promise.all([1, 2, 3].map(() => RawConnection.open(running.port)));
    const client = await within(
      ImgcacheClient.connect({ port: running.port }),
      'admitted while three are silent',
      3_000,
    );
    assert.ok(client.welcome.session.name);
    assert.equal(running.server.stats().sessions, 1, 'occupancy.open counts the admitted session only');
    // Two more real clients fill the capacity; the next one is turned away with the occupancy of sessions.
    const others = [
      await ImgcacheClient.connect({ port: running.port }),
      await ImgcacheClient.connect({ port: running.port }),
    ];
    const full = await rejection(running.port);
    assert.is(full.reject.reason, 'server-full');
    assert.equal(full.reject.occupancy, { open: 3, capacity: 3 });
    for (const each of [client, ...others]) await each.exit();
    for (const peer of silent) peer.destroy();
  } finally {
    await running.stop();
  }
});

test('[P-43] handshakes in progress from one address are bounded: REJECT too-many-handshakes with a retry hint', async () => {
  const running = await startTestServer({ capacity: 3, maxHandshakesPerAddress: 2, retryAfterMs: 750 });
  try {
    const silent = await Promise.all([1, 2].map(() => RawConnection.open(running.port)));
    const third = await RawConnection.open(running.port);
    const reject = await third.nextJson(MessageType.REJECT);
    assert.is(reject.reason, 'too-many-handshakes');
    assert.is(reject.retryAfterMs, 750);
    assert.equal(reject.occupancy, { open: 0, capacity: 3 });
    await running.waitForEvent(
      (event) => event.type === 'connection-rejected' && event.data.reason === 'too-many-handshakes',
    );
    // A silent socket that says HELLO leaves the handshake count: its address has room again.
    silent[0]?.hello();
    await silent[0]?.nextJson(MessageType.WELCOME);
    const client = await ImgcacheClient.connect({ port: running.port });
    await client.exit();
    for (const peer of silent) peer.destroy();
    third.destroy();
  } finally {
    await running.stop();
  }
});

test('[P-44] three idle sessions hold every slot: a turned-away client reclaims one, and its retry gets in', async () => {
  const running = await startTestServer({ capacity: 3, reclaimIdleAfterMs: 0, idleTimeoutMs: 300_000 });
  try {
    const idle = [];
    for (let i = 0; i < 3; i++) idle.push(await ImgcacheClient.connect({ port: running.port }));
    const notices: string[] = [];
    for (const client of idle) client.on('notice', (notice) => notices.push(notice.kind));
    const turnedAway = await rejection(running.port);
    assert.is(turnedAway.reject.reason, 'server-full');
    assert.is(turnedAway.reject.retryAfterMs, 0, 'an idle session was closed for it: retry at once');
    await within(running.waitForEvent(closedWith('idle-reclaimed')), 'an idle session reclaimed', 5_000);
    const retry = await ImgcacheClient.connect({ port: running.port });
    assert.ok(retry.welcome.session.name);
    assert.equal(notices, ['idle-timeout'], 'the reclaimed session was told, with a closing NOTICE');
    await retry.exit();
    for (const client of idle) client.close();
  } finally {
    await running.stop();
  }
});

test('[P-44] a session idle for less than the threshold is not reclaimed: the usual retry hint', async () => {
  const running = await startTestServer({ capacity: 1, reclaimIdleAfterMs: 60_000 });
  try {
    const client = await ImgcacheClient.connect({ port: running.port });
    const turnedAway = await rejection(running.port);
    assert.is(turnedAway.reject.retryAfterMs, 1_000, 'nothing reclaimed: the usual hint');
    await client.list();
    await client.exit();
    assert.not.ok(running.events.some(closedWith('idle-reclaimed')));
  } finally {
    await running.stop();
  }
});

test('[P-28] while the server stops, a new connection gets REJECT shutting-down, not a refused connection', async () => {
  const cache = makeTemporaryFolder('imgcache-cache-');
  copyFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'), path.join(cache, 'sunset.png'));
  writeFileSync(path.join(cache, 'huge.png'), randomBytes(32 * 1024 * 1024));
  const running = await startTestServer({ codes: [950], shutdownGraceMs: 2_000, cacheDir: cache });
  // A frozen reader keeps an answer in flight, so the server takes its grace period to stop.
  const frozen = await RawConnection.open(running.port);
  frozen.hello();
  await frozen.nextJson(MessageType.WELCOME);
  frozen.socket.pause();
  frozen.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'huge.png' });
  await running.waitForEvent((event) => event.type === 'image-served');
  const stopping = running.server.close();
  try {
    const late = await RawConnection.open(running.port);
    const reject = await late.nextJson(MessageType.REJECT);
    assert.is(reject.reason, 'shutting-down');
    late.destroy();
    await running.waitForEvent(
      (event) => event.type === 'connection-rejected' && event.data.reason === 'shutting-down',
    );
  } finally {
    frozen.destroy();
    await stopping;
    await running.stop();
  }
});

test.run();
