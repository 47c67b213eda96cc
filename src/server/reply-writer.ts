/**
 * Writes answers onto a connection. Control frames are one small buffer each; image bytes are never copied: each
 * DATA frame is a 5-byte header written in front of a slice of the image held in memory (or a chunk read from disk),
 * and the writes of one answer are corked into one writev. Every writer reports completion only when the stream has
 * taken the bytes (write returned true, or 'drain' came), which is the outbound backpressure of a connection.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Duplex } from 'node:stream';
import { encodeFrameHeader, encodeJsonFrame } from '../protocol/frame.ts';
import { type ErrorBody, MessageType, type Quota } from '../protocol/messages.ts';
import { type CatalogEntry, describeEntry } from './image-catalog.ts';

export function writeJsonFrame(stream: Duplex, type: number, body: object): boolean {
  if (stream.destroyed || stream.writableEnded) return false;
  return stream.write(encodeJsonFrame(type, body));
}

export function writeErrorFrame(stream: Duplex, body: ErrorBody): boolean {
  return writeJsonFrame(stream, MessageType.ERROR, body);
}

/** Calls `done` once the stream has room again (now, if it has). Never calls it if the stream closes first. */
function whenWritable(stream: Duplex, wroteAll: boolean, done: () => void): void {
  if (wroteAll) {
    done();
    return;
  }
  const onDrain = () => {
    stream.off('close', onClose);
    done();
  };
  const onClose = () => stream.off('drain', onDrain);
  stream.once('drain', onDrain);
  stream.once('close', onClose);
}

export type UsageSource = () => Iterable<string>;

export class ReplyWriter {
  readonly #stream: Duplex;
  readonly #maxFrameBytes: number;
  readonly #usageSource: UsageSource;

  constructor(stream: Duplex, maxFrameBytes: number, usageSource: UsageSource) {
    this.#stream = stream;
    this.#maxFrameBytes = maxFrameBytes;
    this.#usageSource = usageSource;
  }

  /** [P-19] [P-24] REPLY, the image in DATA frames, END. */
  image(requestId: number, entry: CatalogEntry, quota: Quota, done: () => void): void {
    const stream = this.#stream;
    if (stream.destroyed) return;
    const info = describeEntry(entry);
    const reply = {
      id: requestId,
      command: 'get',
      status: 'ok',
      image: entry.name,
      bytes: entry.bytes,
      sha256: entry.sha256,
      modified: info.modified,
      stream: true,
      quota,
    };
    const end = encodeJsonFrame(MessageType.END, { bytes: entry.bytes, sha256: entry.sha256 });
    if (entry.content) {
      stream.cork();
      stream.write(encodeJsonFrame(MessageType.REPLY, reply));
      for (let offset = 0; offset < entry.content.length; offset += this.#maxFrameBytes) {
        const piece = entry.content.subarray(offset, offset + this.#maxFrameBytes);
        stream.write(encodeFrameHeader(MessageType.DATA, piece.length));
        stream.write(piece);
      }
      const wroteAll = stream.write(end);
      stream.uncork();
      whenWritable(stream, wroteAll, done);
      return;
    }
    stream.write(encodeJsonFrame(MessageType.REPLY, reply));
    this.#imageFromDisk(entry, end, done);
  }

  #imageFromDisk(entry: CatalogEntry, end: Buffer, done: () => void): void {
    const stream = this.#stream;
    const file = createReadStream(entry.path, { highWaterMark: this.#maxFrameBytes });
    const stop = () => file.destroy();
    stream.once('close', stop);
    file.on('data', (chunk) => {
      const piece = chunk as Buffer;
      stream.cork();
      stream.write(encodeFrameHeader(MessageType.DATA, piece.length));
      const roomLeft = stream.write(piece);
      stream.uncork();
      if (!roomLeft) {
        file.pause();
        stream.once('drain', () => file.resume());
      }
    });
    file.once('end', () => {
      stream.off('close', stop);
      whenWritable(stream, stream.write(end), done);
    });
    file.once('error', () => {
      // The file vanished or became unreadable mid-answer: the stream cannot be finished honestly.
      stream.off('close', stop);
      stream.destroy();
    });
  }

  /** [P-22] [P-24] REPLY, the usage JSON in DATA frames as the projection produces it, END. */
  usage(requestId: number, quota: Quota, done: () => void): void {
    const stream = this.#stream;
    writeJsonFrame(stream, MessageType.REPLY, {
      id: requestId,
      command: 'usage',
      status: 'ok',
      contentType: 'application/json',
      stream: true,
      quota,
    });
    const pieces = this.#usageSource()[Symbol.iterator]();
    const hash = createHash('sha256');
    let total = 0;
    const target = Math.min(this.#maxFrameBytes, 64 * 1024);
    const pump = (): void => {
      while (!stream.destroyed) {
        let text = '';
        let next = pieces.next();
        while (!next.done) {
          text += next.value;
          if (text.length >= target / 4) break;
          next = pieces.next();
        }
        if (text.length > 0) {
          const bytes = Buffer.from(text, 'utf8');
          hash.update(bytes);
          total += bytes.length;
          // A piece larger than one frame is split; the JSON text is only reassembled by the client.
          for (let offset = 0; offset < bytes.length; offset += this.#maxFrameBytes) {
            const piece = bytes.subarray(offset, offset + this.#maxFrameBytes);
            stream.write(encodeFrameHeader(MessageType.DATA, piece.length));
            stream.write(piece);
          }
        }
        if (next.done) {
          const wroteAll = writeJsonFrame(stream, MessageType.END, { bytes: total, sha256: hash.digest('hex') });
          whenWritable(stream, wroteAll, done);
          return;
        }
        if (stream.writableNeedDrain) {
          whenWritable(stream, false, pump);
          return;
        }
      }
      pieces.return?.();
    };
    pump();
  }
}
