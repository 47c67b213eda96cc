/**
 * [P-43] The handshake pool under silent sockets from a few addresses, over real sockets on loopback: when it is full,
 * a newcomer from another address takes the place of the oldest handshake of the address holding the most, which is
 * turned away with REJECT too-many-handshakes, on record, and closed; no slot and no handshake is left behind.
 */
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { type Frame, FrameDecoder, MessageType, parseJsonBody } from '../src/protocol/index.ts';
import { eventually, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

interface SilentSocket {
  socket: net.Socket;
  /** `address:port`, as the server records it */
  remote: string;
  /** the first frame the server sent, or null if it closed the connection without one */
  first: Promise<Frame | null>;
  closed: Promise<void>;
}

/** A socket from `localAddress` (another loopback address) that never says HELLO. */
async function silentFrom(localAddress: string, port: number): Promise<SilentSocket> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => {});
  const decoder = new FrameDecoder({ maxBodyBytes: 64 * 1024 });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const first = new Promise<Frame | null>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      const [frame] = decoder.push(chunk);
      if (frame) resolve(frame);
    });
    closed.then(() => resolve(null));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, remote: `${localAddress}:${socket.localPort}`, first, closed };
}

test('[P-43] a pool full of silent sockets from two addresses: a client from a third gets in, the oldest gives way', async () => {
  const running = await startTestServer({
    capacity: 3,
    maxHandshakes: 8,
    maxHandshakesPerAddress: 4,
    handshakeTimeoutMs: 60_000,
  });
  const silent: SilentSocket[] = [];
  try {
    for (const address of ['127.0.0.2', '127.0.0.3']) {
      for (let i = 0; i < 4; i++) silent.push(await silentFrom(address, running.port));
    }
    await eventually(() => running.server.stats().connections === 8, 'the 8 silent sockets in their handshake');

    const client = await within(ImgcacheClient.connect({ port: running.port }), 'a WELCOME from 127.0.0.1', 5_000);
    assert.ok(client.welcome.session.name);

    // One silent socket, the oldest of its address, got the REJECT and was closed; the others still wait.
    const turnedAway = await within(
      Promise.race(silent.map((each) => each.first.then((frame) => (frame ? { each, frame } : null)))),
      'a REJECT to one silent socket',
      5_000,
    );
    assert.ok(turnedAway, 'a frame, not a bare close');
    const { each: displaced, frame } = turnedAway;
    assert.is(frame.type, MessageType.REJECT);
    const reject = parseJsonBody(frame.body);
    assert.is(reject.reason, 'too-many-handshakes');
    assert.equal(reject.occupancy, { open: 0, capacity: 3 });
    assert.is(reject.retryAfterMs, 1_000);
    assert.ok([silent[0], silent[4]].includes(displaced), 'the oldest handshake of its address');
    await within(displaced.closed, 'the displaced socket closed', 5_000);
    const record = await within(
      running.waitForEvent((event) => event.type === 'connection-rejected' && event.data.remote === displaced.remote),
      'the REJECT on record',
      5_000,
    );
    assert.is(record.type === 'connection-rejected' && record.data.reason, 'too-many-handshakes');

    await client.exit();
    for (const each of silent) each.socket.destroy();
    await within(Promise.all(silent.map((each) => each.closed)), 'every silent socket closed', 5_000);
    await eventually(() => running.server.stats().connections === 0, 'every connection gone');
    assert.is(running.server.stats().sessions, 0);
    // The displaced connection has its REJECT as its only record: not also dropped, nothing counted twice.
    const own = running.events.filter((event) => event.session === record.session);
    assert.equal(
      own.map((event) => event.type),
      ['connection-rejected'],
    );

    // Nothing leaked: three clients fill the three slots.
    const three = await within(
      Promise.all([1, 2, 3].map(() => ImgcacheClient.connect({ port: running.port }))),
      'three clients admitted',
      5_000,
    );
    for (const each of three) assert.ok(each.welcome.session.name);
    for (const each of three) await each.exit();
  } finally {
    for (const each of silent) each.socket.destroy();
    await running.stop();
  }
});

test.run();
