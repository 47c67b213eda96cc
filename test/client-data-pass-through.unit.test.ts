/**
 * The client's frame reader [P-2] [P-25]: DATA bodies are handed on as views of the chunks they came in, control
 * frames come whole, and however TCP cuts the bytes the frames and the content are the same.
 */
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DataPassThroughReader } from '../client/data-pass-through.ts';
import {
  encodeFrame,
  encodeJsonFrame,
  type Frame,
  FrameDecoder,
  FrameTooLargeError,
  MessageType,
} from '../src/protocol/index.ts';

const content = randomBytes(70_000);
const wire = Buffer.concat([
  encodeJsonFrame(MessageType.REPLY, { id: 1, stream: true }),
  encodeFrame(MessageType.DATA, content.subarray(0, 40_000)),
  encodeFrame(MessageType.DATA, Buffer.alloc(0)),
  encodeFrame(MessageType.DATA, content.subarray(40_000)),
  encodeJsonFrame(MessageType.END, { bytes: content.length }),
  encodeJsonFrame(MessageType.NOTICE, { kind: 'catalog-changed' }),
]);

function readIn(chunks: Buffer[], maxBodyBytes = 1 << 20): Frame[] {
  const reader = new DataPassThroughReader(new FrameDecoder({ maxBodyBytes }));
  return chunks.flatMap((chunk) => reader.push(chunk));
}

function cutEvery(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) chunks.push(bytes.subarray(offset, offset + size));
  return chunks;
}

function summary(frames: Frame[]) {
  const data = frames.filter((frame) => frame.type === MessageType.DATA).map((frame) => frame.body);
  const control = frames.filter((frame) => frame.type !== MessageType.DATA);
  return { content: Buffer.concat(data), control: control.map((frame) => [frame.type, frame.body.toString()]) };
}

const expected = summary(new FrameDecoder({ maxBodyBytes: 1 << 20 }).push(wire));

test('[P-2] [P-25] the same frames and content whether the bytes come whole, one at a time or in odd pieces', () => {
  for (const size of [wire.length, 1, 2, 5, 7, 4096, 65_536]) {
    const got = summary(readIn(cutEvery(wire, size)));
    assert.ok(got.content.equals(content), `content, chunks of ${size}`);
    assert.equal(got.control, expected.control, `control frames, chunks of ${size}`);
  }
});

test('[P-25] a DATA body is handed on as views of the chunk it came in, not as a copy', () => {
  const frames = readIn([wire]);
  const pieces = frames.filter((frame) => frame.type === MessageType.DATA);
  assert.is(pieces.length, 2);
  for (const piece of pieces) assert.is(piece.body.buffer, wire.buffer);
});

test('[P-3] a DATA header over the limit is refused before its body, with the frames before it', () => {
  const big = Buffer.concat([
    encodeJsonFrame(MessageType.REPLY, { id: 1, stream: true }),
    encodeFrame(MessageType.DATA, Buffer.alloc(5000)),
  ]);
  const reader = new DataPassThroughReader(new FrameDecoder({ maxBodyBytes: 4096 }));
  const error = (() => {
    try {
      reader.push(big);
    } catch (caught) {
      return caught;
    }
  })();
  assert.instance(error, FrameTooLargeError);
  assert.is((error as FrameTooLargeError).framesBefore.length, 1);
  assert.throws(
    () => reader.push(Buffer.alloc(1)),
    (thrown: unknown) => thrown === error,
  );
});

test.run();
