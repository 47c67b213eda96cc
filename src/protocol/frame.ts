/**
 * The frame codec of [P-2]: a 5-byte header (u32 big-endian body length, u8 type) followed by the body. Pure: no
 * sockets, no emitters, no timers. The socket glue feeds chunks to a `FrameDecoder` and writes what the encoders
 * return.
 */
import { FrameTooLargeError, TruncatedFrameError } from '../errors.ts';

/** [P-2] Size of a frame header: 4 bytes of length, 1 byte of type. */
export const HEADER_BYTES = 5;
/** [P-2] The largest length a u32 can declare. */
export const MAX_BODY_LENGTH = 0xffffffff;

const LENGTH_OFFSET = 0;
const TYPE_OFFSET = 4;
const MAX_TYPE = 0xff;

/** One decoded frame. `type` is the raw type byte: the receiver decides whether it knows it ([P-4]). */
export interface Frame {
  type: number;
  body: Buffer;
}

/** [P-2] The 5-byte header of a frame of `type` whose body is `length` bytes. */
export function encodeFrameHeader(type: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(header, checkedType(type), checkedLength(length));
  return header;
}

/**
 * [P-2] A frame as two buffers, header and body, without copying the body: write them one after the other (or
 * with `cork`/`writev`). Use this for DATA frames ([P-25]) and anything large.
 */
export function encodeFrameParts(type: number, body: Uint8Array): [header: Buffer, body: Buffer] {
  return [encodeFrameHeader(type, body.byteLength), asBuffer(body)];
}

/** [P-2] A whole frame in one buffer (the body is copied). Convenient for small frames and tests. */
export function encodeFrame(type: number, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.byteLength);
  writeHeader(frame, checkedType(type), checkedLength(body.byteLength));
  frame.set(body, HEADER_BYTES);
  return frame;
}

/**
 * [P-2] [P-5] A frame whose body is `message` as UTF-8 JSON, header and body in a single allocation. For the
 * control messages (every type but DATA).
 */
export function encodeJsonFrame(type: number, message: object): Buffer {
  const json: unknown = JSON.stringify(message);
  if (typeof json !== 'string') throw new TypeError('the message does not serialize to JSON');
  return encodeJsonTextFrame(type, json);
}

/** [P-2] [P-5] A frame whose body is the JSON text `json` (already serialized), in a single allocation. */
export function encodeJsonTextFrame(type: number, json: string): Buffer {
  return jsonTextFrameWithRoom(type, json, 0);
}

/**
 * [P-2] A JSON frame whose body is the text `json`, followed in the same buffer by the header of the next frame
 * (`nextType`, `nextLength`): a REPLY and the header of the first DATA frame go out as one piece, the image after
 * them untouched.
 */
export function encodeJsonTextFrameAndNextHeader(
  type: number,
  json: string,
  nextType: number,
  nextLength: number,
): Buffer {
  const frame = jsonTextFrameWithRoom(type, json, HEADER_BYTES);
  writeHeader(frame.subarray(frame.length - HEADER_BYTES), checkedType(nextType), checkedLength(nextLength));
  return frame;
}

/** A JSON text frame with `roomBytes` left unwritten after it, in one allocation. */
function jsonTextFrameWithRoom(type: number, json: string, roomBytes: number): Buffer {
  const length = Buffer.byteLength(json, 'utf8');
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length + roomBytes);
  writeHeader(frame, checkedType(type), checkedLength(length));
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}

export interface FrameDecoderOptions {
  /** [P-3] The largest body length accepted, in bytes; a header declaring more is refused. */
  maxBodyBytes: number;
}

/** The header of the frame being received, once its 5 bytes are in. */
interface PendingHeader {
  type: number;
  length: number;
}

/**
 * [P-2] [P-3] An incremental frame decoder. `push()` each chunk as it arrives; it returns the frames the chunk
 * completed, in order. A frame that lies within one chunk is returned as a zero-copy view of that chunk (so chunks
 * must not be modified after they are pushed); a frame spread over chunks is assembled with one copy when complete.
 *
 * After it throws, the decoder is failed: the connection must be closed ([P-3], [P-30]) and every later call
 * throws the same error.
 */
export class FrameDecoder {
  #maxBodyBytes: number;
  /** Bytes of a header cut short by the end of a chunk. */
  readonly #headerBytes = Buffer.alloc(HEADER_BYTES);
  #headerFilled = 0;
  #header: PendingHeader | null = null;
  /** Pieces of the current body, concatenated once when the body is complete (never quadratic). */
  #bodyPieces: Buffer[] = [];
  #bodyFilled = 0;
  #failure: Error | null = null;

  constructor(options: FrameDecoderOptions) {
    this.#maxBodyBytes = checkedLimit(options.maxBodyBytes);
  }

  /** [P-3] The current limit on a frame's body length, in bytes. */
  get maxBodyBytes(): number {
    return this.#maxBodyBytes;
  }

  /**
   * [P-3] Changes the limit, e.g. once the handshake is done. It applies to every header not yet complete; a frame
   * whose header is already in keeps the limit it was checked against.
   */
  setMaxBodyBytes(maxBodyBytes: number): void {
    this.#maxBodyBytes = checkedLimit(maxBodyBytes);
  }

  /** Bytes of the unfinished frame received so far, header included (0 between frames). */
  get bufferedBytes(): number {
    return this.#header === null ? this.#headerFilled : HEADER_BYTES + this.#bodyFilled;
  }

  /**
   * Feeds one chunk and returns the frames it completed. Throws `FrameTooLargeError` as soon as a header declares
   * a body over the limit, before any of that body is buffered ([P-3]).
   */
  push(chunk: Buffer): Frame[] {
    this.#throwIfFailed();
    const frames: Frame[] = [];
    let offset = 0;
    // Each step consumes at least one byte: a zero-length frame is finished as soon as its header is in.
    while (offset < chunk.length) {
      offset = this.#header === null ? this.#takeHeader(chunk, offset, frames) : this.#takeBody(chunk, offset, frames);
    }
    return frames;
  }

  /** Declares the end of the input. Throws `TruncatedFrameError` if a frame was cut short ([P-2]). */
  end(): void {
    this.#throwIfFailed();
    if (this.bufferedBytes === 0) return;
    const expected = this.#header === null ? null : HEADER_BYTES + this.#header.length;
    this.#fail(new TruncatedFrameError(this.bufferedBytes, expected));
  }

  /** Reads header bytes from `chunk` at `offset`; once 5 are in, checks the length ([P-3]). Returns the new offset. */
  #takeHeader(chunk: Buffer, offset: number, frames: Frame[]): number {
    const available = chunk.length - offset;
    if (this.#headerFilled === 0 && available >= HEADER_BYTES) {
      this.#startFrame(readHeader(chunk, offset), frames);
      return offset + HEADER_BYTES;
    }
    const taken = Math.min(HEADER_BYTES - this.#headerFilled, available);
    chunk.copy(this.#headerBytes, this.#headerFilled, offset, offset + taken);
    this.#headerFilled += taken;
    if (this.#headerFilled === HEADER_BYTES) {
      this.#headerFilled = 0;
      this.#startFrame(readHeader(this.#headerBytes, 0), frames);
    }
    return offset + taken;
  }

  /** [P-3] Accepts a complete header, or refuses it before a byte of its body is buffered. */
  #startFrame(header: PendingHeader, frames: Frame[]): void {
    if (header.length > this.#maxBodyBytes) {
      this.#fail(new FrameTooLargeError(header.length, this.#maxBodyBytes, frames));
    }
    this.#header = header;
    if (header.length === 0) this.#finishFrame(Buffer.alloc(0), frames);
  }

  /** Reads body bytes of the current frame from `chunk` at `offset`. Returns the new offset. */
  #takeBody(chunk: Buffer, offset: number, frames: Frame[]): number {
    const header = this.#header;
    if (header === null) return offset;
    const available = chunk.length - offset;
    const missing = header.length - this.#bodyFilled;
    if (this.#bodyFilled === 0 && available >= missing) {
      this.#finishFrame(chunk.subarray(offset, offset + missing), frames);
      return offset + missing;
    }
    const taken = Math.min(missing, available);
    this.#bodyPieces.push(chunk.subarray(offset, offset + taken));
    this.#bodyFilled += taken;
    if (this.#bodyFilled === header.length) {
      this.#finishFrame(Buffer.concat(this.#bodyPieces, header.length), frames);
    }
    return offset + taken;
  }

  #finishFrame(body: Buffer, frames: Frame[]): void {
    const header = this.#header;
    if (header === null) return;
    frames.push({ type: header.type, body });
    this.#header = null;
    this.#bodyPieces = [];
    this.#bodyFilled = 0;
  }

  #fail(error: Error): never {
    this.#failure = error;
    this.#header = null;
    this.#headerFilled = 0;
    this.#bodyPieces = [];
    this.#bodyFilled = 0;
    throw error;
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure;
  }
}

function readHeader(bytes: Buffer, offset: number): PendingHeader {
  return {
    length: bytes.readUInt32BE(offset + LENGTH_OFFSET),
    type: bytes.readUInt8(offset + TYPE_OFFSET),
  };
}

function writeHeader(target: Buffer, type: number, length: number): void {
  target.writeUInt32BE(length, LENGTH_OFFSET);
  target.writeUInt8(type, TYPE_OFFSET);
}

/** A `Buffer` view of `bytes`, sharing its memory. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkedType(type: number): number {
  if (!Number.isInteger(type) || type < 0 || type > MAX_TYPE) {
    throw new RangeError(`a frame type is a byte (0..${MAX_TYPE}), got ${type}`);
  }
  return type;
}

function checkedLength(length: number, what = 'frame length'): number {
  if (!Number.isInteger(length) || length < 0 || length > MAX_BODY_LENGTH) {
    throw new RangeError(`a ${what} is a u32 (0..${MAX_BODY_LENGTH}), got ${length}`);
  }
  return length;
}

function checkedLimit(limit: number): number {
  return checkedLength(limit, 'body limit');
}
