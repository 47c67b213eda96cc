/**
 * Fuzz properties of the frame decoder (src/protocol/frame.ts), [P-2] and [P-3]:
 *
 * - whatever bytes arrive, cut into whatever chunks, `push` throws nothing but `FrameTooLargeError` and `end`
 *   nothing but `TruncatedFrameError`, and once failed the decoder keeps failing with the same error;
 * - the outcome does not depend on how the bytes were cut: the frames and the error are those of a one-shot
 *   reference decoder written from [P-2] alone (frames before a refused header included, [P-3]);
 * - the decoder never holds more than one frame's header and body under the limit (`bufferedBytes`), and returns
 *   no body over the limit in force when its header completed;
 * - valid frames, however encoded and however cut, come back byte for byte.
 */
import { FrameTooLargeError, ImgcacheError, TruncatedFrameError } from '../../src/errors.ts';
import {
  encodeFrame,
  encodeFrameHeader,
  encodeFrameParts,
  type Frame,
  FrameDecoder,
  HEADER_BYTES,
  MAX_BODY_LENGTH,
} from '../../src/protocol/frame.ts';
import { HELLO_MAX_BYTES, MessageType } from '../../src/protocol/messages.ts';
import type { Random } from './random.ts';
import { describeBytes, PropertyViolation } from './run-cases.ts';

const KNOWN_TYPES = Object.values(MessageType);

/** The limits worth trying: the real ones, the edges, and some at random. */
function pickLimit(random: Random): number {
  return random.weighted<number>([
    [3, () => HELLO_MAX_BYTES],
    [3, () => 4096],
    [1, () => 0],
    [1, () => 1],
    [1, () => HEADER_BYTES],
    [2, () => random.size(70_000)],
  ]);
}

export function pickType(random: Random): number {
  return random.chance(0.8) ? random.pick(KNOWN_TYPES) : random.below(256);
}

/** A body of `length` bytes: raw bytes, or JSON text padded to length, or one repeated byte. */
function body(random: Random, length: number): Buffer {
  return random.weighted<Buffer>([
    [3, () => random.bytes(length)],
    [1, () => Buffer.alloc(length, random.below(256))],
    [1, () => Buffer.from(`{"id":${random.below(1000)},"command":"list"}`.padEnd(length, ' ').slice(0, length))],
  ]);
}

/** Well-formed frames whose bodies fit `limit`. */
export function validFrames(random: Random, limit: number): Frame[] {
  const count = random.size(40);
  return Array.from({ length: count }, () => {
    const length = random.chance(0.1) ? Math.min(limit, random.size(limit)) : random.below(Math.min(limit, 300) + 1);
    return { type: pickType(random), body: body(random, length) };
  });
}

/** Encodes frames with any of the encoders, which must all agree on the bytes ([P-2]). */
function encodeAny(random: Random, frame: Frame): Buffer {
  return random.weighted<Buffer>([
    [2, () => encodeFrame(frame.type, frame.body)],
    [1, () => Buffer.concat(encodeFrameParts(frame.type, frame.body))],
    [1, () => Buffer.concat([encodeFrameHeader(frame.type, frame.body.length), frame.body])],
  ]);
}

/** What a hostile or broken peer might send: mutations of valid frames, and plain garbage. */
export function hostileBytes(random: Random, limit: number): Buffer {
  const valid = Buffer.concat(validFrames(random, limit).map((frame) => encodeAny(random, frame)));
  return random.weighted<Buffer>([
    [2, () => random.bytes(random.size(2048))],
    [1, () => Buffer.from(random.pick(['GET / HTTP/1.1\r\nHost: x\r\n\r\n', '\x16\x03\x01\x02\x00\x01', 'PING\r\n']))],
    [4, () => mutateBytes(random, valid, limit)],
    [1, () => Buffer.concat([valid, encodeFrameHeader(pickType(random), pickLength(random, limit))])],
    [1, () => valid.subarray(0, random.below(valid.length + 1))],
  ]);
}

/** A declared length near the limit, at the u32 edges, or anywhere. */
function pickLength(random: Random, limit: number): number {
  return random.weighted<number>([
    [2, () => Math.min(MAX_BODY_LENGTH, limit + 1)],
    [1, () => limit],
    [1, () => MAX_BODY_LENGTH],
    [1, () => 0x80000000],
    [1, () => random.below(2 ** 32)],
    [1, () => random.size(limit + 10)],
  ]);
}

/** A few random edits: bit flips, overwritten length fields, insertions, deletions, truncation, duplication. */
export function mutateBytes(random: Random, input: Buffer, limit: number): Buffer {
  let bytes: Buffer = Buffer.from(input);
  const edits = 1 + random.size(6);
  for (let edit = 0; edit < edits; edit++) {
    const at = random.below(bytes.length + 1);
    bytes = random.weighted<Buffer>([
      [3, () => flipBit(random, bytes, at)],
      [2, () => overwrite(bytes, at, encodeFrameHeader(pickType(random), pickLength(random, limit)).subarray(0, 4))],
      [1, () => overwrite(bytes, at, Buffer.from([random.below(256)]))],
      [1, () => Buffer.concat([bytes.subarray(0, at), random.bytes(random.size(64)), bytes.subarray(at)])],
      [1, () => Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + random.size(64)))])],
      [1, () => bytes.subarray(0, at)],
      [1, () => Buffer.concat([bytes, bytes.subarray(at)])],
    ]);
  }
  return bytes;
}

function flipBit(random: Random, bytes: Buffer, at: number): Buffer {
  if (at >= bytes.length) return bytes;
  const out = Buffer.from(bytes);
  out[at] = (out[at] as number) ^ (1 << random.below(8));
  return out;
}

function overwrite(bytes: Buffer, at: number, patch: Buffer): Buffer {
  const out = Buffer.from(bytes);
  patch.copy(out, Math.min(at, Math.max(0, out.length - patch.length)));
  return out;
}

/** Cuts `bytes` into chunks: whole, byte by byte, or at random places (empty chunks included). */
export function cutIntoChunks(random: Random, bytes: Buffer): Buffer[] {
  return random.weighted<Buffer[]>([
    [1, () => [bytes]],
    [1, () => (bytes.length > 4096 ? [bytes] : Array.from(bytes, (_, index) => bytes.subarray(index, index + 1)))],
    [
      4,
      () => {
        const chunks: Buffer[] = [];
        for (let offset = 0; offset < bytes.length; ) {
          const length = random.chance(0.05) ? 0 : 1 + random.size(bytes.length);
          chunks.push(bytes.subarray(offset, offset + length));
          offset += length;
        }
        return chunks;
      },
    ],
  ]);
}

type Outcome =
  | { kind: 'complete' }
  | { kind: 'truncated'; receivedBytes: number; expectedBytes: number | null }
  | { kind: 'too-large'; declaredLength: number; limit: number };

interface Decoded {
  frames: Frame[];
  outcome: Outcome;
}

/** [P-2] [P-3] The whole input decoded at once, straight from the spec: the reference for the incremental decoder. */
export function referenceDecode(bytes: Buffer, limitFor: (frameIndex: number) => number): Decoded {
  const frames: Frame[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < HEADER_BYTES) {
      return { frames, outcome: { kind: 'truncated', receivedBytes: bytes.length - offset, expectedBytes: null } };
    }
    const length = bytes.readUInt32BE(offset);
    const type = bytes.readUInt8(offset + 4);
    const limit = limitFor(frames.length);
    if (length > limit) return { frames, outcome: { kind: 'too-large', declaredLength: length, limit } };
    const end = offset + HEADER_BYTES + length;
    if (end > bytes.length) {
      const outcome: Outcome = {
        kind: 'truncated',
        receivedBytes: bytes.length - offset,
        expectedBytes: HEADER_BYTES + length,
      };
      return { frames, outcome };
    }
    frames.push({ type, body: bytes.subarray(offset + HEADER_BYTES, end) });
    offset = end;
  }
  return { frames, outcome: { kind: 'complete' } };
}

/** A plan for one decoder run: a first limit, and maybe a second one set at a frame boundary (as after a WELCOME). */
interface LimitPlan {
  first: number;
  second: number | null;
  /** index of the chunk after which the second limit is set, if no frame is half received then */
  afterChunk: number;
}

/** Feeds the chunks to a real decoder, checking the memory bound after every push. */
function decodeIncrementally(
  chunks: readonly Buffer[],
  plan: LimitPlan,
  input: string,
): Decoded & { switchAt: number } {
  const decoder = new FrameDecoder({ maxBodyBytes: plan.first });
  const frames: Frame[] = [];
  let switchAt = Number.POSITIVE_INFINITY;
  let highestLimit = plan.first;
  for (const [index, chunk] of chunks.entries()) {
    let pushed: Frame[];
    try {
      pushed = decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw unexpected('push', error, input);
      checkFailedForGood(decoder, error, input);
      frames.push(...error.framesBefore);
      return {
        frames,
        outcome: { kind: 'too-large', declaredLength: error.declaredLength, limit: error.limit },
        switchAt,
      };
    }
    frames.push(...pushed);
    if (decoder.bufferedBytes > HEADER_BYTES + highestLimit) {
      throw new PropertyViolation(`[P-3] buffers ${decoder.bufferedBytes} bytes, over ${highestLimit} + header`, input);
    }
    if (plan.second !== null && index === plan.afterChunk && decoder.bufferedBytes === 0) {
      decoder.setMaxBodyBytes(plan.second);
      highestLimit = Math.max(highestLimit, plan.second);
      switchAt = frames.length;
    }
  }
  try {
    decoder.end();
  } catch (error) {
    if (!(error instanceof TruncatedFrameError)) throw unexpected('end', error, input);
    checkFailedForGood(decoder, error, input);
    return {
      frames,
      outcome: { kind: 'truncated', receivedBytes: error.receivedBytes, expectedBytes: error.expectedBytes },
      switchAt,
    };
  }
  return { frames, outcome: { kind: 'complete' }, switchAt };
}

/** After it failed, the decoder throws the very same error on every call. */
function checkFailedForGood(decoder: FrameDecoder, error: ImgcacheError, input: string): void {
  for (const call of [() => decoder.push(Buffer.from([1, 2, 3])), () => decoder.end()]) {
    try {
      call();
    } catch (again) {
      if (again === error) continue;
      throw new PropertyViolation(`a failed decoder threw another error: ${String(again)}`, input);
    }
    throw new PropertyViolation('a failed decoder accepted more input', input);
  }
  if (decoder.bufferedBytes !== 0) throw new PropertyViolation('a failed decoder still holds bytes', input);
}

function unexpected(call: string, error: unknown, input: string): PropertyViolation {
  const what = error instanceof ImgcacheError ? `${error.name} [${error.code}]` : String(error);
  return new PropertyViolation(`${call}() threw ${what}, not a documented framing error`, input);
}

function sameFrames(actual: readonly Frame[], expected: readonly Frame[]): boolean {
  return (
    actual.length === expected.length &&
    actual.every((frame, index) => frame.type === expected[index]?.type && frame.body.equals(expected[index].body))
  );
}

function sameOutcome(actual: Outcome, expected: Outcome): boolean {
  return JSON.stringify(actual) === JSON.stringify(expected);
}

/**
 * [P-2] [P-3] Any bytes, any cuts, maybe a limit change at a frame boundary: only documented errors, the memory
 * bound, and the same frames and outcome as the reference decoder.
 */
export function decoderMatchesReference(random: Random): void {
  const first = pickLimit(random);
  const bytes = hostileBytes(random, first);
  const chunks = cutIntoChunks(random, bytes);
  const plan: LimitPlan = {
    first,
    second: random.chance(0.3) ? pickLimit(random) : null,
    afterChunk: random.below(chunks.length),
  };
  const input = `limit ${first}${plan.second === null ? '' : ` then ${plan.second}`}, ${chunks.length} chunks, ${describeBytes(bytes)}`;
  const actual = decodeIncrementally(chunks, plan, input);
  const expected = referenceDecode(bytes, (index) => (index < actual.switchAt ? first : (plan.second ?? first)));
  if (!sameFrames(actual.frames, expected.frames)) {
    throw new PropertyViolation(
      `[P-2] decoded ${actual.frames.length} frames where the reference has ${expected.frames.length}, or others`,
      input,
    );
  }
  if (!sameOutcome(actual.outcome, expected.outcome)) {
    const got = JSON.stringify(actual.outcome);
    throw new PropertyViolation(`[P-3] ended ${got}, the reference ${JSON.stringify(expected.outcome)}`, input);
  }
  for (const frame of actual.frames) {
    if (frame.body.length > Math.max(first, plan.second ?? first)) {
      throw new PropertyViolation(`[P-3] returned a body of ${frame.body.length} bytes, over the limit`, input);
    }
  }
}

/** [P-2] Valid frames, encoded by any encoder and cut anywhere, decode to themselves, and nothing is left over. */
export function validFramesRoundTrip(random: Random): void {
  const limit = Math.max(1, pickLimit(random));
  const frames = validFrames(random, limit);
  const bytes = Buffer.concat(frames.map((frame) => encodeAny(random, frame)));
  const chunks = cutIntoChunks(random, bytes);
  const input = `limit ${limit}, ${frames.length} frames, ${chunks.length} chunks, ${describeBytes(bytes)}`;
  const decoder = new FrameDecoder({ maxBodyBytes: limit });
  const decoded: Frame[] = [];
  try {
    for (const chunk of chunks) decoded.push(...decoder.push(chunk));
    decoder.end();
  } catch (error) {
    throw unexpected('push or end', error, input);
  }
  if (!sameFrames(decoded, frames)) throw new PropertyViolation('[P-2] valid frames did not round-trip', input);
  if (decoder.bufferedBytes !== 0) throw new PropertyViolation('bytes left over after whole frames', input);
}
