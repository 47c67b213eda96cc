/**
 * The wire rules of docs/PROTOCOL.md checked byte by byte with a bare TCP peer: what the server answers to good and
 * bad frames, and when it closes.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import { encodeFrameHeader, encodeJsonFrame, MessageType } from '../src/protocol/index.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { makeTemporaryFolder, startTestServer, type TestServer } from './helpers/test-server.ts';

let running: TestServer;

test.before(async () => {
  running = await startTestServer({ codes: [108], capacity: 3, handshakeTimeoutMs: 300, idleTimeoutMs: 60_000 });
});

test.after(async () => {
  await running.stop();
});

async function admitted(): Promise<RawConnection> {
  const peer = await RawConnection.open(running.port);
  peer.hello();
  await peer.nextJson(MessageType.WELCOME);
  return peer;
}

test('[P-12] the WELCOME carries name, code, tier, quota, version and limits', async () => {
  const peer = await RawConnection.open(running.port);
  peer.hello([1]);
  const welcome = await peer.nextJson(MessageType.WELCOME);
  assert.is(welcome.version, 1);
  assert.match(String((welcome.session as { name: string }).name), /^client-\d+$/);
  assert.equal(welcome.quota, { limit: 3, used: 0, remaining: 3 });
  assert.equal(welcome.limits, { maxRequestBytes: 4096, maxFrameBytes: 1048576, idleTimeoutMs: 60_000 });
  peer.destroy();
});

test('[P-10] a HELLO with no common version is rejected with the versions the server speaks, then closed', async () => {
  const peer = await RawConnection.open(running.port);
  peer.hello([7, 8]);
  const reject = await peer.nextJson(MessageType.REJECT);
  assert.is(reject.reason, 'unsupported-version');
  assert.equal(reject.supported, [1]);
  assert.is(await peer.next(), null, 'the server closes after the REJECT');
});

test('[P-6] unknown HELLO fields and a credential are ignored; the highest common version is chosen', async () => {
  const peer = await RawConnection.open(running.port);
  peer.sendJson(MessageType.HELLO, { versions: [1, 2], credential: 'key-123', futureField: { a: 1 } });
  const welcome = await peer.nextJson(MessageType.WELCOME);
  assert.is(welcome.version, 1);
  peer.destroy();
});

test('[P-3] a first frame over 1024 bytes is refused before its body arrives', async () => {
  const peer = await RawConnection.open(running.port);
  peer.send(encodeFrameHeader(MessageType.HELLO, 50_000_000)); // declares 50 MB, sends none of it
  const reject = await peer.nextJson(MessageType.REJECT);
  assert.is(reject.reason, 'frame-too-large');
  await peer.closed;
});

test('[P-11] a first frame that is not a HELLO gets REJECT bad-hello; so does a HELLO without versions', async () => {
  for (const send of [
    (peer: RawConnection) => peer.sendJson(MessageType.REQUEST, { id: 1, command: 'list' }),
    (peer: RawConnection) => peer.sendJson(MessageType.HELLO, { client: 'x' }),
    (peer: RawConnection) => peer.send(Buffer.from('GET / HTTP/1.0\r\n\r\n')),
  ]) {
    const peer = await RawConnection.open(running.port);
    send(peer);
    const reject = await peer.nextJson(MessageType.REJECT);
    assert.ok(['bad-hello', 'frame-too-large'].includes(String(reject.reason)), String(reject.reason));
    await peer.closed;
  }
});

test('[P-11] a connection that sends no HELLO is rejected with handshake-timeout and its slot is freed', async () => {
  const silent = await Promise.all([1, 2, 3].map(() => RawConnection.open(running.port)));
  const rejects = await Promise.all(silent.map((peer) => peer.nextJson(MessageType.REJECT)));
  assert.ok(rejects.every((reject) => reject.reason === 'handshake-timeout'));
  await Promise.all(silent.map((peer) => peer.closed));
  const peer = await admitted();
  peer.destroy();
});

test('a connection that closes before its HELLO is recorded as dropped, with the reason', async () => {
  const peer = await RawConnection.open(running.port);
  const remote = `127.0.0.1:${peer.socket.localPort}`;
  const dropped = running.waitForNextEvent((event) => event.type === 'connection-dropped');
  peer.destroy();
  assert.equal((await dropped).data, { reason: 'client-closed', remote });
});

test('[P-15] [P-16] [P-17] ids are echoed, answers come in order, every answer carries the quota', async () => {
  const peer = await admitted();
  peer.sendJson(MessageType.REQUEST, { id: 41, command: 'list' });
  peer.sendJson(MessageType.REQUEST, { id: 42, command: 'get', image: 'no-such.png' });
  peer.sendJson(MessageType.REQUEST, { id: 43, command: 'dance' });
  peer.sendJson(MessageType.REQUEST, { id: 44, command: 'get' });
  peer.sendJson(MessageType.REQUEST, { id: 45, command: 'get', image: 'sunset.png' });
  const list = await peer.nextJson(MessageType.REPLY);
  assert.is(list.id, 41);
  assert.equal(list.quota, { limit: 3, used: 0, remaining: 3 });
  const missing = await peer.nextJson(MessageType.ERROR);
  assert.equal([missing.id, missing.code, missing.fatal], [42, 'image-not-found', false]);
  assert.equal(missing.quota, { limit: 3, used: 0, remaining: 3 }, 'a missing image costs nothing');
  const unknown = await peer.nextJson(MessageType.ERROR);
  assert.equal([unknown.id, unknown.code, unknown.fatal], [43, 'unknown-command', false]);
  const bad = await peer.nextJson(MessageType.ERROR);
  assert.equal([bad.id, bad.code, bad.fatal], [44, 'bad-request', false]);
  const reply = await peer.nextJson(MessageType.REPLY);
  assert.equal([reply.id, reply.command, reply.stream], [45, 'get', true]);
  assert.equal(reply.quota, { limit: 3, used: 1, remaining: 2 });
  let received = 0;
  for (;;) {
    const frame = await peer.next();
    if (!frame) throw new Error('closed mid-stream');
    if (frame.type === MessageType.END) {
      const end = JSON.parse(frame.body.toString());
      assert.is(end.bytes, received);
      assert.is(end.sha256, reply.sha256);
      break;
    }
    assert.is(frame.type, MessageType.DATA, '[P-24] nothing but DATA inside a stream');
    received += frame.body.length;
  }
  assert.is(received, reply.bytes);
  peer.destroy();
});

test('[P-24] [P-25] an image over 1 MiB arrives in several DATA frames of at most maxFrameBytes', async () => {
  const peer = await admitted();
  peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'terrain-large.png' });
  const reply = await peer.nextJson(MessageType.REPLY);
  assert.ok(Number(reply.bytes) > 1048576);
  let frames = 0;
  for (let frame = await peer.next(); frame && frame.type === MessageType.DATA; frame = await peer.next()) {
    assert.ok(frame.body.length <= 1048576);
    frames += 1;
  }
  assert.ok(frames >= 2, `${frames} DATA frames`);
  peer.destroy();
});

test('[P-19] [P-24] an empty image is a REPLY of 0 bytes and its END, no DATA frame', async () => {
  const cacheDir = makeTemporaryFolder();
  writeFileSync(path.join(cacheDir, 'blank.png'), Buffer.alloc(0));
  const blank = await startTestServer({ cacheDir });
  try {
    // Held in memory from the start (it fits): the answer goes through the in-memory branch of the writer.
    assert.equal(blank.server.catalog.memoryUse(), { bytes: 0, images: 1 });
    const peer = await RawConnection.open(blank.port);
    peer.hello();
    await peer.nextJson(MessageType.WELCOME);
    const emptySha = createHash('sha256').digest('hex');
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'blank.png' });
    const reply = await peer.nextJson(MessageType.REPLY);
    assert.equal([reply.id, reply.bytes, reply.sha256], [1, 0, emptySha]);
    assert.equal(await peer.nextJson(MessageType.END), { bytes: 0, sha256: emptySha }, 'END right after the REPLY');
    peer.destroy();
  } finally {
    await blank.stop();
  }
});

test('[P-3] after the WELCOME a request over maxRequestBytes is refused with a fatal frame-too-large', async () => {
  const peer = await admitted();
  peer.send(encodeFrameHeader(MessageType.REQUEST, 4097));
  const error = await peer.nextJson(MessageType.ERROR);
  assert.equal([error.id, error.code, error.fatal], [null, 'frame-too-large', true]);
  await peer.closed;
});

test('[P-5] a body that is not UTF-8 JSON is a fatal malformed-message', async () => {
  for (const body of [Buffer.from([0xff, 0xfe, 0x7b]), Buffer.from('not json'), Buffer.from('[1,2]')]) {
    const peer = await admitted();
    peer.send(Buffer.concat([encodeFrameHeader(MessageType.REQUEST, body.length), body]));
    const error = await peer.nextJson(MessageType.ERROR);
    assert.equal([error.code, error.fatal], ['malformed-message', true]);
    await peer.closed;
  }
});

test('[P-4] a frame type a client may not send is a fatal unexpected-message', async () => {
  const peer = await admitted();
  peer.sendJson(MessageType.WELCOME, {});
  const error = await peer.nextJson(MessageType.ERROR);
  assert.equal([error.code, error.fatal], ['unexpected-message', true]);
  await peer.closed;
});

test('[P-16] more than 64 requests at once: the first 64 are answered, then a fatal too-many-requests', async () => {
  const peer = await admitted();
  const burst = Array.from({ length: 100 }, (_, id) => encodeJsonFrame(MessageType.REQUEST, { id, command: 'dance' }));
  peer.send(Buffer.concat(burst)); // one write: the server reads them together
  const answered: unknown[] = [];
  for (let frame = await peer.next(); frame; frame = await peer.next())
    answered.push(JSON.parse(frame.body.toString()));
  const last = answered.at(-1) as { code: string; fatal: boolean; id: null };
  assert.equal([last.code, last.fatal, last.id], ['too-many-requests', true, null]);
  assert.is(answered.length, 65, '64 answers and the error');
});

test('[P-23] exit is acknowledged, then the server closes', async () => {
  const peer = await admitted();
  peer.sendJson(MessageType.REQUEST, { id: 9, command: 'exit' });
  const reply = await peer.nextJson(MessageType.REPLY);
  assert.equal([reply.id, reply.command, reply.status], [9, 'exit', 'ok']);
  assert.is(await peer.next(), null);
});

test('[P-27] an admitted session idle past the idle timeout is told so and closed; the close is on record', async () => {
  const idle = await startTestServer({ idleTimeoutMs: 150 });
  try {
    const peer = await RawConnection.open(idle.port);
    peer.hello();
    await peer.nextJson(MessageType.WELCOME);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'list' });
    await peer.nextJson(MessageType.REPLY);
    const notice = await peer.nextJson(MessageType.NOTICE);
    assert.equal([notice.kind, notice.closing], ['idle-timeout', true]);
    assert.is(await peer.next(), null, 'the NOTICE is the last frame');
    const history = openDatabase(idle.database, { readonly: true });
    const closes = readEvents(history).filter((event) => event.type === 'session-closed');
    history.close();
    assert.equal(
      closes.map((event) => event.data),
      [{ reason: 'idle-timeout' }],
    );
  } finally {
    await idle.stop();
  }
});

test.run();
