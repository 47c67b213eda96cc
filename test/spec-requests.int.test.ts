/**
 * Requests as docs/PROTOCOL.md settles them, over real sockets with raw frames: ids by value ([P-50]), duplicate
 * member names ([P-50]), the id of too-many-requests ([P-16]), requests after the last frame ([P-55]), and a
 * malformed `have` on a missing image ([P-35]).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame, MessageType } from '../src/protocol/index.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { startTestServer, type TestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** A REQUEST frame whose body is exactly `text` (no re-encoding: the spelling of its numbers is kept). */
function request(text: string): Buffer {
  return encodeFrame(MessageType.REQUEST, Buffer.from(text, 'utf8'));
}

/** Every frame until the server closes the connection, as [type, body]. */
async function allFrames(peer: RawConnection): Promise<Array<[number, Record<string, unknown>]>> {
  const frames: Array<[number, Record<string, unknown>]> = [];
  for (;;) {
    const frame = await within(peer.next(), 'the next frame or the close');
    if (!frame) return frames;
    frames.push([frame.type, JSON.parse(frame.body.toString('utf8')) as Record<string, unknown>]);
  }
}

let running: TestServer;

test.before(async () => {
  running = await startTestServer({ capacity: 10 });
});

test.after(async () => {
  await running.stop();
});

test('[P-50] an id is read by its value and echoed in plain digits: 1.0, 1e2, -0 are 1, 100, 0', async () => {
  const peer = await RawConnection.admitted(running.port);
  for (const [spelling, id] of [
    ['1.0', 1],
    ['1e2', 100],
    ['-0', 0],
    ['4294967295', 4294967295],
  ] as const) {
    peer.send(request(`{"id":${spelling},"command":"get","image":"no-such.png"}`));
    const frame = await within(peer.next(), spelling);
    assert.ok(frame);
    assert.match(frame?.body.toString('utf8') ?? '', new RegExp(`^\\{"id":${id},"code":"image-not-found"`), spelling);
  }
  peer.destroy();
});

test('[P-50] an id that is not an integer in range is bad-request with id null, the session goes on', async () => {
  const peer = await RawConnection.admitted(running.port);
  for (const spelling of ['1.5', '4294967296', '9007199254740993', '1e400', '"7"', 'null']) {
    peer.send(request(`{"id":${spelling},"command":"list"}`));
    const error = await within(peer.nextJson(MessageType.ERROR), spelling);
    assert.equal([error.id, error.code, error.fatal], [null, 'bad-request', false], spelling);
  }
  peer.send(request('{"id":9,"command":"list"}'));
  assert.is((await peer.nextJson(MessageType.REPLY)).id, 9);
  peer.destroy();
});

test('[P-50] a request naming a member twice is malformed-message, fatal, id null: never read by one of them', async () => {
  for (const text of [
    '{"id":1,"command":"list","command":"exit"}',
    '{"id":1,"command":"get","image":"sunset.png","\\u0069mage":"mandelbrot.png"}',
  ]) {
    const peer = await RawConnection.admitted(running.port);
    peer.send(request(text));
    const frames = await allFrames(peer);
    assert.equal(
      frames.map(([type, body]) => [type, body.id, body.code, body.fatal]),
      [[MessageType.ERROR, null, 'malformed-message', true]],
      text,
    );
  }
});

test('[P-16] more than 64 requests at once: 64 answers, then too-many-requests with id null, then the close', async () => {
  const peer = await RawConnection.admitted(running.port);
  const requests = Array.from({ length: 80 }, (_, index) =>
    request(`{"id":${index + 1},"command":"get","image":"no-such-${index + 1}.png"}`),
  );
  peer.send(Buffer.concat(requests));
  const frames = await allFrames(peer);
  assert.is(frames.length, 65);
  assert.equal(
    frames.slice(0, 64).map(([, body]) => body.id),
    Array.from({ length: 64 }, (_, index) => index + 1),
  );
  const [type, last] = frames[64] ?? [0, {}];
  assert.equal([type, last.id, last.code, last.fatal], [MessageType.ERROR, null, 'too-many-requests', true]);
});

test('[P-55] requests sent after exit get no answer', async () => {
  const peer = await RawConnection.admitted(running.port);
  peer.send(
    Buffer.concat([
      request('{"id":1,"command":"get","image":"no-such.png"}'),
      request('{"id":2,"command":"exit"}'),
      request('{"id":3,"command":"list"}'),
    ]),
  );
  const frames = await allFrames(peer);
  assert.equal(
    frames.map(([type, body]) => [type, body.id]),
    [
      [MessageType.ERROR, 1],
      [MessageType.REPLY, 2],
    ],
  );
});

test('[P-55] requests sent after the frame that drew a fatal ERROR get no answer; those before it do', async () => {
  const peer = await RawConnection.admitted(running.port);
  peer.send(
    Buffer.concat([
      request('{"id":1,"command":"get","image":"no-such.png"}'),
      encodeFrame(0x7f, Buffer.from('{}')),
      request('{"id":3,"command":"list"}'),
    ]),
  );
  const frames = await allFrames(peer);
  assert.equal(
    frames.map(([type, body]) => [type, body.id, body.code]),
    [
      [MessageType.ERROR, 1, 'image-not-found'],
      [MessageType.ERROR, null, 'unexpected-message'],
    ],
  );
});

test('[P-35] a malformed have is bad-request whether the image exists or not', async () => {
  const peer = await RawConnection.admitted(running.port);
  for (const image of ['sunset.png', 'no-such.png']) {
    for (const have of ['"ABC"', 'null', '7', `"${'A'.repeat(64)}"`]) {
      peer.send(request(`{"id":1,"command":"get","image":"${image}","have":${have}}`));
      const error = await within(peer.nextJson(MessageType.ERROR), `${image} ${have}`);
      assert.equal([error.code, error.fatal], ['bad-request', false], `${image} ${have}`);
    }
  }
  // A well-formed have on a missing image: image-not-found.
  peer.send(request(`{"id":2,"command":"get","image":"no-such.png","have":"${'a'.repeat(64)}"}`));
  assert.is((await peer.nextJson(MessageType.ERROR)).code, 'image-not-found');
  peer.destroy();
});

test('[P-58] names are compared exactly; modified is a 24-character UTC time with milliseconds', async () => {
  const peer = await RawConnection.admitted(running.port);
  peer.send(request('{"id":1,"command":"list"}'));
  const list = await peer.nextJson(MessageType.REPLY);
  const images = list.images as Array<{ name: string; modified: string }>;
  assert.ok(images.length > 0);
  for (const image of images) assert.match(image.modified, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // The same name spelled with JSON escapes is the same name; any other spelling is another name.
  peer.send(
    request(
      '{"id":2,"command":"get","image":"\\u0073unset.png","have":"0000000000000000000000000000000000000000000000000000000000000000"}',
    ),
  );
  assert.is((await peer.nextJson(MessageType.REPLY)).status, 'ok');
  await peer.readStream(2);
  for (const [id, name] of [
    [3, 'Sunset.png'],
    [4, 'sunset.png '],
    [5, ' sunset.png'],
    [6, 'sunset.PNG'],
    [7, 'sunset.png'.normalize('NFKD').replace('s', '\uff53')],
  ] as const) {
    peer.send(request(JSON.stringify({ id, command: 'get', image: name })));
    const error = await peer.nextJson(MessageType.ERROR);
    assert.equal([error.id, error.code], [id, 'image-not-found'], name);
  }
  peer.destroy();
});

test.run();
