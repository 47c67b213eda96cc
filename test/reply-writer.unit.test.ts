import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Frame, FrameDecoder } from '../src/protocol/frame.ts';
import { MessageType } from '../src/protocol/messages.ts';
import { catalogEntry, sha256Hex } from '../src/server/image-catalog.ts';
import { ReplyWriter, WRITE_WINDOW_BYTES } from '../src/server/reply-writer.ts';

const MAX_FRAME_BYTES = 1024 * 1024;

/** A stream that takes everything at once and keeps what each of its writes (one buffer, or one writev) carried. */
function recordingStream(): { stream: Duplex; writes: Buffer[][] } {
  const writes: Buffer[][] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      writes.push([chunk]);
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.map(({ chunk }) => chunk as Buffer));
      callback();
    },
  });
  return { stream, writes };
}

function writerOn(stream: Duplex): ReplyWriter {
  return new ReplyWriter(stream, {
    maxFrameBytes: MAX_FRAME_BYTES,
    drainTimeoutMs: 5_000,
    usageSource: () => {
      throw new Error('no usage here');
    },
    onAbort: (reason) => assert.unreachable(`aborted: ${reason}`),
  });
}

function framesOf(writes: Buffer[][]): Frame[] {
  const decoder = new FrameDecoder({ maxBodyBytes: MAX_FRAME_BYTES });
  return decoder.push(Buffer.concat(writes.flat()));
}

test('[P-24] [P-25] [P-41] an image held in memory goes out a window at a time, each window one writev', async () => {
  const content = randomBytes(2 * WRITE_WINDOW_BYTES + 3 * 1000);
  const sha256 = sha256Hex(content);
  const signature = { bytes: content.length, mtimeMs: 0, dev: 1, ino: 1 };
  const entry = { ...catalogEntry('/nowhere/big.png', 'big.png', signature, sha256), content };
  const { stream, writes } = recordingStream();
  const quota = { limit: 10, used: 1, remaining: 9 };
  await new Promise<void>((resolve) => writerOn(stream).image(7, entry, quota, resolve));

  assert.is(writes.length, 3, 'three windows, three writes');
  const frames = framesOf(writes);
  const [reply, ...rest] = frames;
  assert.is(reply?.type, MessageType.REPLY);
  assert.is(JSON.parse(reply?.body.toString('utf8') ?? '').id, 7);
  const end = rest.pop();
  assert.is(end?.type, MessageType.END);
  assert.equal(JSON.parse(end?.body.toString('utf8') ?? ''), { bytes: content.length, sha256 });
  assert.ok(
    rest.every((frame) => frame.type === MessageType.DATA && frame.body.length <= MAX_FRAME_BYTES),
    'DATA frames, none over maxFrameBytes',
  );
  assert.equal(Buffer.concat(rest.map((frame) => frame.body)), content);
  // Each window ends on a frame: the first holds the REPLY and whole frames, the last the END.
  const framesPerWindow = WRITE_WINDOW_BYTES / MAX_FRAME_BYTES;
  assert.is(framesOf(writes.slice(0, 1)).length, 1 + framesPerWindow);
  assert.is(writes[2]?.at(-1), entry.endFrame);
});

test('[P-42] the image bytes a stream took are counted a window at a time, and a window is a frame', async () => {
  // A stream that takes one writev at a time, when told: what a slow reader's kernel does.
  const pending: Array<() => void> = [];
  const stream = new Duplex({
    read() {},
    writev(_chunks, callback) {
      pending.push(callback);
    },
    highWaterMark: 16 * 1024,
  });
  const content = randomBytes(4 * MAX_FRAME_BYTES);
  const signature = { bytes: content.length, mtimeMs: 0, dev: 1, ino: 3 };
  const entry = { ...catalogEntry('/nowhere/big.png', 'big.png', signature, sha256Hex(content)), content };
  const writer = writerOn(stream);
  let done = false;
  writer.image(1, entry, { limit: 3, used: 1, remaining: 2 }, () => {
    done = true;
  });
  const takeOne = async () => {
    pending.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  assert.is(writer.dataBytesTaken, 0, 'nothing taken yet');
  for (let frames = 1; frames < 4; frames++) {
    await takeOne();
    assert.is(writer.dataBytesTaken, frames * MAX_FRAME_BYTES, `${frames} frame(s) taken whole, the next one waits`);
    assert.not.ok(done);
  }
  await takeOne();
  assert.is(writer.dataBytesTaken, content.length);
  assert.ok(done, 'the answer is done once the stream took it all');
});

test('[P-24] an image that fits in one frame goes out in one writev, REPLY to END', async () => {
  const content = randomBytes(4096);
  const signature = { bytes: content.length, mtimeMs: 0, dev: 1, ino: 2 };
  const entry = { ...catalogEntry('/nowhere/small.png', 'small.png', signature, sha256Hex(content)), content };
  const { stream, writes } = recordingStream();
  await new Promise<void>((resolve) => writerOn(stream).image(1, entry, { limit: 3, used: 1, remaining: 2 }, resolve));
  assert.is(writes.length, 1);
  assert.equal(
    framesOf(writes).map((frame) => frame.type),
    [MessageType.REPLY, MessageType.DATA, MessageType.END],
  );
});

test.run();
