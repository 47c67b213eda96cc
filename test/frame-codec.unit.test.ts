import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameTooLargeError, ImgcacheError, TruncatedFrameError } from '../src/errors.ts';
import {
  encodeFrame,
  encodeFrameHeader,
  encodeFrameParts,
  encodeJsonFrame,
  encodeJsonTextFrameAndNextHeader,
  type Frame,
  FrameDecoder,
  HEADER_BYTES,
} from '../src/protocol/frame.ts';
import { MessageType } from '../src/protocol/messages.ts';
import { mulberry32 } from '../src/tools/mulberry32.ts';

const LIMIT = 1024 * 1024;
const SHA = '9f2c'.repeat(16);
const QUOTA = { limit: 3, used: 1, remaining: 2 };
const SESSION = { name: 'client-42', code: 108, tier: 'bronze', canReadUsage: false };

interface Fixture {
  name: string;
  type: number;
  body: Buffer;
}

function json(name: string, type: number, message: object): Fixture {
  return { name, type, body: Buffer.from(JSON.stringify(message), 'utf8') };
}

/** [P-4] One frame of every message type, with the bodies of the spec's examples. */
const FIXTURES: Fixture[] = [
  json('HELLO', MessageType.HELLO, { versions: [1], client: 'my-client/1.0', credential: null }),
  json('WELCOME', MessageType.WELCOME, {
    version: 1,
    server: 'imgcache/0.1.0',
    session: SESSION,
    quota: { limit: 3, used: 0, remaining: 3 },
    limits: { maxRequestBytes: 4096, maxFrameBytes: 1048576, idleTimeoutMs: 300000 },
  }),
  json('REJECT', MessageType.REJECT, {
    reason: 'server-full',
    message: 'the server is at capacity (3/3 sessions); try again later',
    occupancy: { open: 3, capacity: 3 },
    retryAfterMs: 1000,
  }),
  json('REQUEST', MessageType.REQUEST, { id: 7, command: 'get', image: 'sunset.png' }),
  json('REPLY', MessageType.REPLY, {
    id: 7,
    command: 'get',
    status: 'ok',
    image: 'sunset.png',
    bytes: 18214,
    sha256: SHA,
    modified: '2026-11-25T10:00:00.000Z',
    stream: true,
    quota: QUOTA,
  }),
  json('ERROR', MessageType.ERROR, {
    id: 7,
    code: 'image-not-found',
    message: "no image named 'x.png'",
    fatal: false,
    quota: QUOTA,
  }),
  json('NOTICE', MessageType.NOTICE, { kind: 'idle-timeout', message: 'idle for 300 s', closing: true }),
  { name: 'DATA', type: MessageType.DATA, body: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0x0d, 0x0a]) },
  { name: 'DATA (empty)', type: MessageType.DATA, body: Buffer.alloc(0) },
  json('END', MessageType.END, { bytes: 18214, sha256: SHA }),
  json('JSON with non-ASCII', MessageType.REQUEST, { id: 1, command: 'get', image: 'café-日本.png' }),
];

function concatFrames(fixtures: readonly Fixture[]): Buffer {
  return Buffer.concat(fixtures.map((f) => encodeFrame(f.type, f.body)));
}

function plain(frames: readonly Frame[]): { type: number; body: string }[] {
  return frames.map((f) => ({ type: f.type, body: f.body.toString('hex') }));
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.unreachable('expected an error');
}

function assertCode(error: unknown, code: string): void {
  assert.instance(error, ImgcacheError);
  if (error instanceof ImgcacheError) assert.is(error.code, code);
}

// ---- encoding --------------------------------------------------------------------------------------------------

test('[P-2] the spec example: REQUEST {"id":1,"command":"list"} is 00 00 00 19 10 then the JSON', () => {
  const frame = encodeJsonFrame(MessageType.REQUEST, { id: 1, command: 'list' });
  assert.is(frame.subarray(0, HEADER_BYTES).toString('hex'), '0000001910');
  assert.is(frame.subarray(HEADER_BYTES).toString('utf8'), '{"id":1,"command":"list"}');
  assert.is(frame.length, HEADER_BYTES + 25);
});

test('[P-2] encodeFrameHeader writes a big-endian u32 length then the type byte', () => {
  assert.is(encodeFrameHeader(0x20, 0x01020304).toString('hex'), '0102030420');
  assert.is(encodeFrameHeader(0x21, 0).toString('hex'), '0000000021');
  assert.is(encodeFrameHeader(0xff, 0xffffffff).toString('hex'), 'ffffffffff');
});

test('[P-2] encoders refuse a type that is not a byte or a length that is not a u32', () => {
  for (const [type, length] of [
    [256, 0],
    [-1, 0],
    [1.5, 0],
    [1, -1],
    [1, 2 ** 32],
    [1, 0.5],
  ] as const) {
    assert.throws(() => encodeFrameHeader(type, length), RangeError, `type ${type} length ${length}`);
  }
  assert.throws(() => encodeFrame(256, Buffer.alloc(1)), RangeError);
});

test('[P-2] encodeFrameParts returns the header and the body itself, not a copy', () => {
  const body = Buffer.from('abcdef');
  const [header, out] = encodeFrameParts(MessageType.DATA, body);
  assert.is(header.toString('hex'), '0000000620');
  assert.ok(out === body, 'a Buffer body is returned as is');
  const bytes = new Uint8Array([1, 2, 3, 4]).subarray(1, 3);
  const [, view] = encodeFrameParts(MessageType.DATA, bytes);
  view[0] = 9;
  assert.is(bytes[0], 9, 'a Uint8Array body is viewed, sharing memory');
});

test('[P-2] [P-5] encodeJsonFrame holds header and UTF-8 JSON in one buffer', () => {
  const frame = encodeJsonFrame(MessageType.NOTICE, { kind: 'shutting-down', message: 'au revoir — à bientôt' });
  const body = frame.subarray(HEADER_BYTES);
  assert.is(frame.readUInt32BE(0), body.length);
  assert.is(frame[4], MessageType.NOTICE);
  assert.equal(JSON.parse(body.toString('utf8')), { kind: 'shutting-down', message: 'au revoir — à bientôt' });
});

test('[P-2] [P-25] a REPLY and the next DATA header in one buffer decode as the REPLY, then the DATA frame', () => {
  const image = Buffer.from('bytes of an image, not copied');
  const json = '{"id":7,"command":"get","status":"ok","image":"soleil-été.png"}';
  const head = encodeJsonTextFrameAndNextHeader(MessageType.REPLY, json, MessageType.DATA, image.length);
  assert.is(head.length, HEADER_BYTES + Buffer.byteLength(json) + HEADER_BYTES);
  const frames = new FrameDecoder({ maxBodyBytes: LIMIT }).push(Buffer.concat([head, image]));
  assert.equal(
    frames.map((frame) => [frame.type, frame.body.toString('utf8')]),
    [
      [MessageType.REPLY, json],
      [MessageType.DATA, image.toString('utf8')],
    ],
  );
});

// ---- decoding: fixtures ----------------------------------------------------------------------------------------

for (const fixture of FIXTURES) {
  test(`[P-2] [P-4] round-trip of a ${fixture.name} frame`, () => {
    const encoded = encodeFrame(fixture.type, fixture.body);
    assert.is(encoded.length, HEADER_BYTES + fixture.body.length);
    const [header, body] = encodeFrameParts(fixture.type, fixture.body);
    assert.ok(encoded.equals(Buffer.concat([header, body])), 'encodeFrame equals encodeFrameParts');
    const frames = new FrameDecoder({ maxBodyBytes: LIMIT }).push(encoded);
    assert.equal(plain(frames), plain([fixture]));
  });
}

test('[P-2] many frames in one chunk are all returned, in order', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: LIMIT });
  const frames = decoder.push(concatFrames(FIXTURES));
  assert.equal(plain(frames), plain(FIXTURES));
  assert.is(decoder.bufferedBytes, 0);
  decoder.end();
});

test('[P-2] the same bytes fed one at a time give the same frames', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: LIMIT });
  const bytes = concatFrames(FIXTURES);
  const frames: Frame[] = [];
  for (let i = 0; i < bytes.length; i++) frames.push(...decoder.push(bytes.subarray(i, i + 1)));
  assert.equal(plain(frames), plain(FIXTURES));
  decoder.end();
});

test('[P-2] a length prefix split across chunks at every position', () => {
  const encoded = encodeJsonFrame(MessageType.REQUEST, { id: 1, command: 'list' });
  for (let cut = 1; cut < HEADER_BYTES; cut++) {
    const decoder = new FrameDecoder({ maxBodyBytes: LIMIT });
    assert.equal(decoder.push(encoded.subarray(0, cut)), [], `cut at ${cut}`);
    assert.is(decoder.bufferedBytes, cut);
    const frames = decoder.push(encoded.subarray(cut));
    assert.is(frames.length, 1, `cut at ${cut}`);
    assert.is(frames[0]?.body.toString('utf8'), '{"id":1,"command":"list"}');
  }
});

test('[P-2] a frame within one chunk is a zero-copy view of the chunk', () => {
  const chunk = concatFrames(FIXTURES.slice(0, 2));
  const [first] = new FrameDecoder({ maxBodyBytes: LIMIT }).push(chunk);
  assert.ok(first !== undefined);
  assert.ok(first.body.buffer === chunk.buffer, 'the body shares the chunk memory');
});

test('[P-2] a zero-length body is a frame, also between others and at the end of a chunk', () => {
  const empty = encodeFrame(MessageType.DATA, Buffer.alloc(0));
  const data = encodeFrame(MessageType.DATA, Buffer.from('xy'));
  const decoder = new FrameDecoder({ maxBodyBytes: 2 });
  const frames = decoder.push(Buffer.concat([empty, data, empty, empty]));
  assert.equal(
    frames.map((f) => f.body.length),
    [0, 2, 0, 0],
  );
  assert.is(decoder.bufferedBytes, 0);
  decoder.end();
});

test('[P-2] a large frame arriving in many small chunks is assembled once', () => {
  const body = Buffer.alloc(200_000, 7);
  const encoded = encodeFrame(MessageType.DATA, body);
  const decoder = new FrameDecoder({ maxBodyBytes: LIMIT });
  const frames: Frame[] = [];
  for (let i = 0; i < encoded.length; i += 97) frames.push(...decoder.push(encoded.subarray(i, i + 97)));
  assert.is(frames.length, 1);
  assert.ok(frames[0]?.body.equals(body));
});

// ---- limits ----------------------------------------------------------------------------------------------------

test('[P-3] an oversized length is refused before any body is buffered', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: 1024 });
  const header = encodeFrameHeader(MessageType.HELLO, 1025);
  assert.equal(decoder.push(header.subarray(0, 3)), []);
  const error = thrown(() => decoder.push(Buffer.concat([header.subarray(3), Buffer.alloc(10)])));
  assertCode(error, 'frame-too-large');
  assert.instance(error, FrameTooLargeError);
  if (error instanceof FrameTooLargeError) {
    assert.is(error.declaredLength, 1025);
    assert.is(error.limit, 1024);
    assert.is(error.fatal, true);
    assert.is(error.requestId, null);
  }
  assert.is(decoder.bufferedBytes, 0);
});

test('[P-3] a header alone declaring 4 GiB is refused at once', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: 4096 });
  assertCode(
    thrown(() => decoder.push(encodeFrameHeader(MessageType.REQUEST, 0xffffffff))),
    'frame-too-large',
  );
  assert.ok(decoder.bufferedBytes <= HEADER_BYTES);
});

test('[P-3] a length equal to the limit is accepted', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: 16 });
  const frames = decoder.push(encodeFrame(MessageType.DATA, Buffer.alloc(16, 1)));
  assert.is(frames.length, 1);
});

test('[P-3] frames completed before the oversized header travel on the error', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: 64 });
  const ok = encodeJsonFrame(MessageType.REQUEST, { id: 1, command: 'list' });
  const error = thrown(() => decoder.push(Buffer.concat([ok, encodeFrameHeader(MessageType.REQUEST, 65)])));
  assert.instance(error, FrameTooLargeError);
  if (error instanceof FrameTooLargeError) {
    assert.is(error.framesBefore.length, 1);
    assert.is(error.framesBefore[0]?.body.toString('utf8'), '{"id":1,"command":"list"}');
  }
});

test('[P-3] after a refusal the decoder stays failed', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: 8 });
  thrown(() => decoder.push(encodeFrameHeader(MessageType.DATA, 9)));
  assertCode(
    thrown(() => decoder.push(encodeFrame(MessageType.DATA, Buffer.alloc(1)))),
    'frame-too-large',
  );
  assertCode(
    thrown(() => decoder.end()),
    'frame-too-large',
  );
});

test('[P-3] the limit raised after the handshake applies to the next frames', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: 1024 });
  const big = encodeFrame(MessageType.REQUEST, Buffer.alloc(2000, 0x20));
  assert.is(decoder.push(encodeJsonFrame(MessageType.HELLO, { versions: [1] })).length, 1);
  decoder.setMaxBodyBytes(4096);
  assert.is(decoder.maxBodyBytes, 4096);
  assert.is(decoder.push(big).length, 1);
  decoder.setMaxBodyBytes(1024);
  assertCode(
    thrown(() => decoder.push(big)),
    'frame-too-large',
  );
});

test('[P-3] a frame whose header is already in keeps the limit it was checked against', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: 100 });
  const encoded = encodeFrame(MessageType.DATA, Buffer.alloc(100, 3));
  decoder.push(encoded.subarray(0, 10));
  decoder.setMaxBodyBytes(10);
  assert.is(decoder.push(encoded.subarray(10)).length, 1);
});

test('[P-3] a limit that is not a u32 is refused', () => {
  assert.throws(() => new FrameDecoder({ maxBodyBytes: -1 }), RangeError);
  assert.throws(() => new FrameDecoder({ maxBodyBytes: 1 }).setMaxBodyBytes(Number.NaN), RangeError);
});

// ---- end of input ----------------------------------------------------------------------------------------------

test('[P-2] end() after whole frames is quiet', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: LIMIT });
  decoder.end();
  assert.equal(decoder.push(Buffer.alloc(0)), []);
  decoder.push(concatFrames(FIXTURES));
  decoder.end();
});

test('[P-2] truncated input at end(): a header cut short', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: LIMIT });
  decoder.push(Buffer.from([0, 0, 0]));
  const error = thrown(() => decoder.end());
  assertCode(error, 'truncated-frame');
  assert.instance(error, TruncatedFrameError);
  if (error instanceof TruncatedFrameError) {
    assert.is(error.receivedBytes, 3);
    assert.is(error.expectedBytes, null);
  }
});

test('[P-2] truncated input at end(): a body cut short', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: LIMIT });
  const encoded = encodeFrame(MessageType.DATA, Buffer.alloc(10));
  decoder.push(encoded.subarray(0, 12));
  assert.is(decoder.bufferedBytes, 12);
  const error = thrown(() => decoder.end());
  assertCode(error, 'truncated-frame');
  if (error instanceof TruncatedFrameError) {
    assert.is(error.receivedBytes, 12);
    assert.is(error.expectedBytes, 15);
  }
});

test('[P-2] truncated input at end(): a header without any of its body', () => {
  const decoder = new FrameDecoder({ maxBodyBytes: LIMIT });
  decoder.push(encodeFrameHeader(MessageType.DATA, 1));
  assertCode(
    thrown(() => decoder.end()),
    'truncated-frame',
  );
});

// ---- fuzz ------------------------------------------------------------------------------------------------------

function randomInt(random: () => number, max: number): number {
  return Math.floor(random() * (max + 1));
}

function randomFrames(random: () => number): Fixture[] {
  const count = randomInt(random, 12);
  return Array.from({ length: count }, () => {
    const length = random() < 0.2 ? 0 : randomInt(random, random() < 0.1 ? 5000 : 300);
    const body = Buffer.alloc(length);
    for (let i = 0; i < length; i++) body[i] = randomInt(random, 255);
    return { name: 'random', type: randomInt(random, 255), body };
  });
}

function randomCuts(random: () => number, length: number): number[] {
  const cuts = new Set<number>();
  const count = randomInt(random, Math.min(length, 40));
  for (let i = 0; i < count; i++) cuts.add(randomInt(random, length));
  if (random() < 0.1) for (let i = 0; i < Math.min(length, 50); i++) cuts.add(i);
  return [...cuts, 0, length].sort((a, b) => a - b);
}

const FUZZ_BASE_SEED = 0x1a2b3c4d;
const FUZZ_CASES = 300;

test(`[P-2] fuzz: ${FUZZ_CASES} random frame sequences cut at random points decode exactly`, () => {
  for (let n = 0; n < FUZZ_CASES; n++) {
    const seed = (FUZZ_BASE_SEED + n) >>> 0;
    const random = mulberry32(seed);
    const expected = randomFrames(random);
    const bytes = concatFrames(expected);
    const cuts = randomCuts(random, bytes.length);
    const decoder = new FrameDecoder({ maxBodyBytes: 5000 });
    const frames: Frame[] = [];
    for (let i = 1; i < cuts.length; i++) frames.push(...decoder.push(bytes.subarray(cuts[i - 1], cuts[i])));
    assert.equal(plain(frames), plain(expected), `mulberry32 seed ${seed}`);
    assert.is(decoder.bufferedBytes, 0, `mulberry32 seed ${seed}`);
    decoder.end();
  }
});

test.run();
