/**
 * The client's frame reader [P-2]: the frames of a connection as the protocol's FrameDecoder gives them, except that
 * a DATA frame's body [P-25] is handed on in the pieces the socket brought it in, never assembled into one buffer.
 * Each piece is a view of the chunk it came in (no copy), to be hashed and written to its file as it passes; a DATA
 * frame of 1 MiB then costs no 1 MiB allocation and no copy. Control frames (REPLY, END, NOTICE, ...) still go
 * through the decoder, which checks their length against its limit ([P-3]).
 *
 * Pure: no socket, no emitter. After it throws, the connection must be closed ([P-3], [P-30]).
 */
import { type Frame, type FrameDecoder, FrameTooLargeError, HEADER_BYTES, MessageType } from '../src/protocol/index.ts';

const TYPE_OFFSET = 4;

export class DataPassThroughReader {
  readonly #decoder: FrameDecoder;
  /** the header of the next frame, while it is cut short by the end of a chunk */
  readonly #header = Buffer.alloc(HEADER_BYTES);
  #headerFilled = 0;
  /** body bytes of the current frame still to come */
  #bodyLeft = 0;
  /** whether the current body is a DATA frame's, passed on as it comes (else a control frame's, fed to the decoder) */
  #passing = false;
  #failure: Error | null = null;

  /** `decoder` holds the limit on a frame's length ([P-3]), for DATA frames too. */
  constructor(decoder: FrameDecoder) {
    this.#decoder = decoder;
  }

  /** [P-3] Changes the limit, e.g. once the WELCOME gave it: it applies to every header not yet complete. */
  setMaxBodyBytes(maxBodyBytes: number): void {
    this.#decoder.setMaxBodyBytes(maxBodyBytes);
  }

  /** Bytes of an unfinished control frame (or header) held so far: 0 between frames and inside a DATA body. */
  get bufferedBytes(): number {
    return this.#headerFilled + this.#decoder.bufferedBytes;
  }

  /**
   * Feeds one chunk and returns, in order, the control frames it completed and the pieces of DATA bodies it held
   * (each as a frame of type DATA whose body is a piece of the frame's body; an empty DATA frame gives none).
   */
  push(chunk: Buffer): Frame[] {
    if (this.#failure) throw this.#failure;
    const frames: Frame[] = [];
    try {
      let offset = 0;
      while (offset < chunk.length) {
        offset = this.#bodyLeft > 0 ? this.#takeBody(chunk, offset, frames) : this.#takeHeader(chunk, offset, frames);
      }
    } catch (error) {
      this.#failure = error as Error;
      throw error;
    }
    return frames;
  }

  #takeBody(chunk: Buffer, offset: number, frames: Frame[]): number {
    const end = Math.min(chunk.length, offset + this.#bodyLeft);
    const piece = chunk.subarray(offset, end);
    this.#bodyLeft -= end - offset;
    if (this.#passing) frames.push({ type: MessageType.DATA, body: piece });
    else frames.push(...this.#decoder.push(piece));
    return end;
  }

  #takeHeader(chunk: Buffer, offset: number, frames: Frame[]): number {
    const taken = Math.min(HEADER_BYTES - this.#headerFilled, chunk.length - offset);
    chunk.copy(this.#header, this.#headerFilled, offset, offset + taken);
    this.#headerFilled += taken;
    if (this.#headerFilled < HEADER_BYTES) return offset + taken;
    this.#headerFilled = 0;
    const length = this.#header.readUInt32BE(0);
    this.#passing = this.#header[TYPE_OFFSET] === MessageType.DATA;
    if (this.#passing) {
      const limit = this.#decoder.maxBodyBytes;
      if (length > limit) throw new FrameTooLargeError(length, limit, frames);
    } else {
      // A copy: the decoder keeps views of what it is given, and this header buffer is reused.
      frames.push(...this.#decoder.push(Buffer.from(this.#header)));
    }
    this.#bodyLeft = length;
    return offset + taken;
  }
}
