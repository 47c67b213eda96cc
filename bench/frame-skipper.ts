/**
 * Reads the frames of [P-2] off a byte stream for the load generator, without keeping image bytes: a DATA body is
 * only counted, never copied or re-assembled ([P-24], [P-25]). Control frames are reported by type; their bodies are
 * copied only for the few types the caller asks for (ERROR, NOTICE, REJECT: rare, small). Pure: no sockets.
 */

/** [P-2] 4 bytes of length, 1 byte of type. */
const HEADER_BYTES = 5;
/** [P-4] */
export const DATA_FRAME_TYPE = 0x20;

export interface SkippedFrame {
  type: number;
  /** the body length declared in the header */
  length: number;
  /** the body, for the types the caller keeps; null otherwise */
  body: Buffer | null;
}

export type FrameListener = (type: number, length: number, body: Buffer | null) => void;

export class FrameSkipper {
  readonly #onFrame: FrameListener;
  readonly #keepBodyOf: ReadonlySet<number>;
  readonly #header = Buffer.alloc(HEADER_BYTES);
  #headerFilled = 0;
  /** type of the frame whose body is being read; -1 between frames */
  #type = -1;
  #length = 0;
  #remaining = 0;
  #kept: Buffer | null = null;
  #keptFilled = 0;
  /** DATA body bytes seen since the last call of takeDataBytes() */
  #dataBytes = 0;

  constructor(onFrame: FrameListener, keepBodyOf: Iterable<number> = []) {
    this.#onFrame = onFrame;
    this.#keepBodyOf = new Set(keepBodyOf);
  }

  /** DATA body bytes counted since the last call, and resets the count. */
  takeDataBytes(): number {
    const bytes = this.#dataBytes;
    this.#dataBytes = 0;
    return bytes;
  }

  /** Feeds bytes `start`..`end` of `chunk`; reports each frame as soon as its last byte is in. */
  push(chunk: Uint8Array, start: number, end: number): void {
    let offset = start;
    while (offset < end) {
      if (this.#type === -1) offset = this.#readHeader(chunk, offset, end);
      else offset = this.#readBody(chunk, offset, end);
    }
  }

  #readHeader(chunk: Uint8Array, offset: number, end: number): number {
    if (this.#headerFilled === 0 && end - offset >= HEADER_BYTES) {
      const length =
        ((chunk[offset] as number) * 0x1000000 +
          (((chunk[offset + 1] as number) << 16) |
            ((chunk[offset + 2] as number) << 8) |
            (chunk[offset + 3] as number))) >>>
        0;
      this.#startBody(chunk[offset + 4] as number, length);
      return offset + HEADER_BYTES;
    }
    const taken = Math.min(HEADER_BYTES - this.#headerFilled, end - offset);
    this.#header.set(chunk.subarray(offset, offset + taken), this.#headerFilled);
    this.#headerFilled += taken;
    if (this.#headerFilled === HEADER_BYTES) {
      this.#headerFilled = 0;
      this.#startBody(this.#header[4] as number, this.#header.readUInt32BE(0));
    }
    return offset + taken;
  }

  #startBody(type: number, length: number): void {
    this.#type = type;
    this.#length = length;
    this.#remaining = length;
    if (this.#keepBodyOf.has(type)) {
      this.#kept = Buffer.allocUnsafe(length);
      this.#keptFilled = 0;
    }
    if (length === 0) this.#finishFrame();
  }

  #readBody(chunk: Uint8Array, offset: number, end: number): number {
    const taken = Math.min(this.#remaining, end - offset);
    if (this.#type === DATA_FRAME_TYPE) this.#dataBytes += taken;
    else if (this.#kept !== null) {
      this.#kept.set(chunk.subarray(offset, offset + taken), this.#keptFilled);
      this.#keptFilled += taken;
    }
    this.#remaining -= taken;
    if (this.#remaining === 0) this.#finishFrame();
    return offset + taken;
  }

  #finishFrame(): void {
    const type = this.#type;
    const body = this.#kept;
    this.#type = -1;
    this.#kept = null;
    this.#onFrame(type, this.#length, body);
  }
}
