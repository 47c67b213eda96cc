/**
 * Writes answers onto a connection. Control frames are one small buffer each; image bytes are never copied: each
 * DATA frame is a 5-byte header written in front of a slice of the image held in memory (or a chunk read from disk),
 * and the writes of one answer are corked into one writev. Every writer reports completion only when the stream has
 * taken the bytes (write returned true, or 'drain' came), which is the outbound backpressure of a connection.
 */
import type { Duplex } from 'node:stream';
import type { UsageFilter } from '../../db/usage-export.ts';
import type { UsageExport } from '../../db/usage-threads.ts';
import type { ImageChangedError, ImageReadFailedError } from '../errors.ts';
import {
  encodeFrameHeader,
  encodeJsonFrame,
  encodeJsonTextFrame,
  encodeJsonTextFrameAndNextHeader,
} from '../protocol/frame.ts';
import { type ErrorBody, MessageType, type Quota } from '../protocol/messages.ts';
import { DrainWaiter } from './drain-watch.ts';
import type { CatalogEntry } from './image-catalog.ts';
import { ImageFileReader } from './image-file-reader.ts';

export function writeJsonFrame(stream: Duplex, type: number, body: object): boolean {
  if (stream.destroyed || stream.writableEnded) return false;
  return stream.write(encodeJsonFrame(type, body));
}

export function writeErrorFrame(stream: Duplex, body: ErrorBody): boolean {
  return writeJsonFrame(stream, MessageType.ERROR, body);
}

/**
 * [P-41] [P-42] Bytes of an image held in memory handed to the stream at once (in whole DATA frames, at least one),
 * before waiting for the stream to take them: one system call for many small frames, while the drain deadline sees
 * progress, and a transfer cut short knows what it sent, a window at a time. At 4 MiB a client that read one 1 MiB
 * frame of a large image and reset left 0 bytes sent on record (the first window was taken only in part); the
 * default frame (1 MiB) is now a window of its own.
 */
export const WRITE_WINDOW_BYTES = 1024 * 1024;

/** [P-46] Starts an export of the usage document, in chunks of at most `chunkBytes`. */
export type UsageSource = (filter: UsageFilter | undefined, chunkBytes: number) => UsageExport;

export interface ReplyWriterOptions {
  /** bytes: the largest DATA body [P-25] */
  maxFrameBytes: number;
  /** ms a reader may take none of a pending answer before it is cut off */
  drainTimeoutMs: number;
  usageSource: UsageSource;
  /** an answer cannot be finished (the reader stalled past the drain deadline, a file or the history failed
   * mid-stream): the connection must be dropped, for this reason */
  onAbort: (
    reason: 'drain-timeout' | 'image-changed' | 'image-read-failed' | 'usage-export-failed',
    error?: Error,
  ) => void;
  /** when the client last reported progress on a stream [P-40]: counts as progress for the drain deadline */
  reportedProgressAt?: () => number;
}

export class ReplyWriter {
  readonly #stream: Duplex;
  readonly #maxFrameBytes: number;
  /** bytes of an image held in memory written at once: WRITE_WINDOW_BYTES in whole frames, at least one frame */
  readonly #windowBytes: number;
  readonly #options: ReplyWriterOptions;
  /** outbound backpressure with the drain deadline [P-41]: one per connection */
  readonly #drain: DrainWaiter;
  readonly #onStalled = () => this.#options.onAbort('drain-timeout');
  /** [P-42] DATA body bytes of the answer being written handed to the stream, and those the stream has taken */
  #dataQueued = 0;
  #dataTaken = 0;

  constructor(stream: Duplex, options: ReplyWriterOptions) {
    this.#stream = stream;
    this.#maxFrameBytes = options.maxFrameBytes;
    this.#windowBytes = Math.max(1, Math.floor(WRITE_WINDOW_BYTES / options.maxFrameBytes)) * options.maxFrameBytes;
    this.#options = options;
    this.#drain = new DrainWaiter(stream, options.drainTimeoutMs, options.reportedProgressAt);
  }

  /**
   * DATA frames carrying `bytes`, split at maxFrameBytes [P-25], never copied. Returns write()'s last answer. With
   * `replyJson`, that REPLY is encoded in one buffer with the first DATA header (`bytes` must not be empty then).
   */
  #writeData(bytes: Buffer, replyJson?: string): boolean {
    let roomLeft = true;
    for (let offset = 0; offset < bytes.length; offset += this.#maxFrameBytes) {
      const piece = bytes.subarray(offset, offset + this.#maxFrameBytes);
      this.#dataQueued += piece.length;
      this.#stream.write(
        offset === 0 && replyJson !== undefined
          ? encodeJsonTextFrameAndNextHeader(MessageType.REPLY, replyJson, MessageType.DATA, piece.length)
          : encodeFrameHeader(MessageType.DATA, piece.length),
      );
      roomLeft = this.#stream.write(piece);
    }
    return roomLeft;
  }

  /** Calls `done` once the stream has taken what was written (now, if it has); never if the reader stalls. */
  #whenWritable(wroteAll: boolean, done: () => void): void {
    if (wroteAll) {
      this.#dataTaken = this.#dataQueued;
      done();
      return;
    }
    const drained = () => {
      this.#dataTaken = this.#dataQueued;
      done();
    };
    this.#drain.wait(drained, this.#onStalled);
  }

  /**
   * [P-42] The image bytes of the answer being written that the connection has taken (DATA bodies written with room
   * left, or drained): what a transfer cut short did send. Bytes still buffered in the process are not counted.
   */
  get dataBytesTaken(): number {
    return this.#dataTaken;
  }

  /** [P-40] The image bytes of the answer being written handed to the stream so far. */
  get dataBytesHanded(): number {
    return this.#dataQueued;
  }

  /**
   * [P-19] [P-24] REPLY, the image in DATA frames, END. The REPLY is the entry's constant members with the id and
   * quota put in, encoded in one buffer with the first DATA header. An image held in memory goes out a window at a
   * time: the frames of up to WRITE_WINDOW_BYTES of it (the REPLY in front of the first, the END behind the last)
   * in one corked writev, the next window once the stream has taken that one. So a large image costs a few system
   * calls, as one buffer would, and still every window taken is progress the drain deadline sees ([P-41]) and a
   * transfer cut short knows what it sent ([P-42]). `done` runs once the END is written and taken.
   */
  image(requestId: number, entry: CatalogEntry, quota: Quota, done: () => void): void {
    const stream = this.#stream;
    if (stream.destroyed) return;
    this.#dataQueued = 0;
    this.#dataTaken = 0;
    const json = `{"id":${requestId},${entry.servedReplyMembers},"quota":${quotaJson(quota)}}`;
    const end = entry.endFrame;
    const content = entry.content;
    if (content && entry.bytes > 0) {
      this.#windowsFrom(content, 0, end, done, json);
      return;
    }
    stream.write(encodeJsonTextFrame(MessageType.REPLY, json));
    if (entry.content) this.#whenWritable(stream.write(end), done);
    else this.#imageFromDisk(entry, end, done);
  }

  /**
   * The DATA frames of `content` from `offset` on, one window per corked writev (with `replyJson`, that REPLY in
   * front of the first frame), each once the stream took the one before; the END goes with the last window.
   */
  #windowsFrom(content: Buffer, offset: number, end: Buffer, done: () => void, replyJson?: string): void {
    const stream = this.#stream;
    if (stream.destroyed) return;
    const windowEnd = Math.min(content.length, offset + this.#windowBytes);
    const last = windowEnd >= content.length;
    stream.cork();
    const roomLeft = this.#writeData(content.subarray(offset, windowEnd), replyJson);
    const wroteAll = last ? stream.write(end) : roomLeft;
    stream.uncork();
    if (last) this.#whenWritable(wroteAll, done);
    else this.#whenWritable(wroteAll, () => this.#windowsFrom(content, windowEnd, end, done));
  }

  /**
   * [P-39] The image from disk, through the reader that opens only the catalogued file (no link followed), reads at
   * most its announced bytes and withholds the last chunk unless the file is unchanged and the bytes hash right. A
   * file that is not the catalogued one any more cuts the stream: the END is never written, the connection is
   * dropped with the error's code (`image-changed` or `image-read-failed`).
   */
  #imageFromDisk(entry: CatalogEntry, end: Buffer, done: () => void): void {
    const stream = this.#stream;
    const reader = new ImageFileReader(entry, this.#maxFrameBytes);
    const stop = () => reader.close();
    stream.once('close', stop);
    const pump = (): void => {
      reader.next().then(
        (chunk) => {
          if (stream.destroyed) return;
          if (chunk === null) {
            stream.off('close', stop);
            this.#whenWritable(stream.write(end), done);
            return;
          }
          stream.cork();
          const roomLeft = this.#writeData(chunk);
          stream.uncork();
          this.#whenWritable(roomLeft, pump);
        },
        (error: ImageChangedError | ImageReadFailedError) => {
          stream.off('close', stop);
          if (!stream.destroyed) this.#options.onAbort(error.code, error);
        },
      );
    };
    pump();
  }

  /**
   * [P-22] [P-24] [P-46] REPLY, the usage JSON in DATA frames, END. The document is built on a usage thread
   * (db/usage-threads.ts): this only writes the chunks it is given, one at a time, taking the next only once the
   * socket has taken the last one (a slow reader slows the export down, it does not fill the memory). The END's
   * length and SHA-256 come from the thread too.
   */
  usage(requestId: number, quota: Quota, filter: UsageFilter | undefined, done: () => void): void {
    const stream = this.#stream;
    this.#dataQueued = 0;
    this.#dataTaken = 0;
    writeJsonFrame(stream, MessageType.REPLY, {
      id: requestId,
      command: 'usage',
      status: 'ok',
      contentType: 'application/json',
      stream: true,
      quota,
    });
    let source: UsageExport;
    try {
      source = this.#options.usageSource(filter, Math.min(this.#maxFrameBytes, 64 * 1024));
    } catch (error) {
      this.#options.onAbort('usage-export-failed', error as Error);
      return;
    }
    const release = () => source.cancel(); // the client went away: the thread drops the export
    stream.once('close', release);
    const pump = async (): Promise<void> => {
      for (;;) {
        const read = await source.read();
        if (stream.destroyed) return;
        if ('end' in read) {
          stream.off('close', release);
          this.#whenWritable(writeJsonFrame(stream, MessageType.END, read.end), done);
          return;
        }
        if (!this.#writeData(read.chunk)) await new Promise<void>((resolve) => this.#whenWritable(false, resolve));
      }
    };
    pump().catch((error: Error) => {
      // The history could not be read mid-stream: the answer cannot be finished honestly.
      stream.off('close', release);
      if (!stream.destroyed) this.#options.onAbort('usage-export-failed', error);
    });
  }
}

/** [P-17] The quota as JSON text; its three members are integers. */
function quotaJson(quota: Quota): string {
  const counts = `"limit":${quota.limit},"used":${quota.used},"remaining":${quota.remaining}`;
  if (quota.period === undefined) return `{${counts}}`;
  // [P-64] a keyed session's quota runs over a period
  return `{${counts},"period":${JSON.stringify(quota.period)},"resetsAt":${JSON.stringify(quota.resetsAt ?? null)}}`;
}
