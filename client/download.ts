/**
 * Downloads an image into the client's cache folder without ever leaving a corrupt file there: the bytes go to a
 * temporary file beside the target, which is renamed into place only after the length and SHA-256 announced by the
 * server's END frame matched what arrived [P-24]. A conditional get [P-34] answered not-modified [P-35] leaves the
 * target alone.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Quota } from '../src/protocol/index.ts';
import type { GetOutcome, ImgcacheClient, ProgressListener, StreamSink } from './imgcache-client.ts';

export const DEFAULT_CACHE_DIR = 'client-cache';

/**
 * What the temporary file may hold in memory before the socket is paused, bytes. The socket's pieces (views of the
 * chunks it read, [P-25]) queue there while the file writes the ones before them, and go out together in one writev:
 * the network and the disk then work at the same time, where a small buffer paused the socket at every write.
 */
const FILE_BUFFER_BYTES = 8 << 20;

export interface Downloaded {
  image: string;
  path: string;
  bytes: number;
  sha256: string;
  quota: Quota;
}

/** What a conditional get did to the target file. */
export type Received =
  | ({ status: 'downloaded' } & Downloaded)
  | { status: 'not-modified'; image: string; path: string; bytes: number; sha256: string; quota: Quota };

export interface ReceiveOptions {
  /** [P-34] the SHA-256 of the copy held at the target */
  have?: string;
  onProgress?: ProgressListener;
}

/** A server's image name becomes a local file name only if it is a plain name: no folders, no dot-dot, no NUL. */
export function isSafeFileName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= 255 &&
    name !== '.' &&
    name !== '..' &&
    !/[/\\\0]/.test(name) &&
    !name.startsWith('.')
  );
}

/** Resolves when the file wants more, or when it will never emit 'drain' again (ended, failed, closed). */
function untilDrained(file: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      for (const event of ['drain', 'finish', 'error', 'close']) file.off(event, done);
      resolve();
    };
    for (const event of ['drain', 'finish', 'error', 'close']) file.once(event, done);
  });
}

/**
 * The temporary file beside the target that a stream's bytes go to: created at the first byte (a get answered
 * not-modified [P-35], or refused, creates and removes nothing), renamed over the target once the stream checked
 * out [P-24], removed otherwise.
 */
class TemporaryFile implements StreamSink {
  readonly #folder: string;
  readonly #image: string;
  #path = '';
  #file: WriteStream | null = null;
  /** rejects when the file fails (cannot be created or written) */
  readonly failed: Promise<never>;
  #fail: (error: Error) => void = () => {};

  constructor(folder: string, image: string) {
    this.#folder = folder;
    this.#image = image;
    this.failed = new Promise<never>((_resolve, reject) => {
      this.#fail = reject;
    });
    this.failed.catch(() => {});
  }

  write(piece: Buffer): undefined | Promise<void> {
    const file = this.#open();
    // A file that failed takes nothing more and never drains: the rest of the stream is read and dropped, so the
    // connection goes on to the answers after it (the get has failed already, with the file's error).
    if (file.destroyed) return undefined;
    return file.write(piece) ? undefined : untilDrained(file);
  }

  /** Writes what is buffered, then renames the file over `target`. */
  async keep(target: string): Promise<void> {
    const file = this.#open();
    file.end();
    await Promise.race([once(file, 'finish'), this.failed]);
    await rename(this.#path, target);
  }

  /** Closes the file (once it is open, if it was still opening) and removes it. */
  async discard(): Promise<void> {
    const file = this.#file;
    if (!file) return;
    if (!file.closed) {
      const closed = once(file, 'close').catch(() => {});
      file.destroy();
      await closed;
    }
    await rm(this.#path, { force: true });
  }

  #open(): WriteStream {
    if (!this.#file) {
      this.#path = path.join(this.#folder, `.${this.#image}.${randomBytes(4).toString('hex')}.part`);
      this.#file = createWriteStream(this.#path, { highWaterMark: FILE_BUFFER_BYTES });
      this.#file.once('error', (error) => this.#fail(error));
    }
    return this.#file;
  }
}

/** The unconditional download: always transfers the image (and counts against the quota [P-21]). */
export async function downloadImage(client: ImgcacheClient, image: string, folder: string): Promise<Downloaded> {
  await mkdir(folder, { recursive: true });
  const received = await receiveImage(client, image, folder);
  const { status: _status, ...downloaded } = received;
  return downloaded;
}

/**
 * A get into `folder/image` (the folder exists), conditional when `options.have` is given: on not-modified the
 * target is not touched; otherwise the image lands in a temporary file renamed over the target once END checked out
 * [P-24]. The request is sent at once, before this returns: calls made one after the other send their requests in
 * that order, and their answers come in that order [P-16].
 */
export function receiveImage(
  client: ImgcacheClient,
  image: string,
  folder: string,
  options: ReceiveOptions = {},
): Promise<Received> {
  if (!isSafeFileName(image)) {
    return Promise.reject(new Error(`refusing to save an image named '${image}': not a plain file name`));
  }
  const file = new TemporaryFile(folder, image);
  return settle(client.getImage(image, file, options), file, image, path.join(folder, image));
}

async function settle(
  answer: Promise<GetOutcome>,
  file: TemporaryFile,
  image: string,
  target: string,
): Promise<Received> {
  try {
    const outcome = await Promise.race([answer, file.failed]);
    if (outcome.status === 'not-modified') {
      const { bytes, sha256, quota } = outcome.reply;
      return { status: 'not-modified', image, path: target, bytes, sha256, quota };
    }
    await file.keep(target);
    const { bytes, sha256 } = outcome.end;
    return { status: 'downloaded', image, path: target, bytes, sha256, quota: outcome.quota };
  } catch (error) {
    answer.catch(() => {}); // the file failed first: the answer, whatever it is, is not awaited any more
    await file.discard();
    throw error;
  }
}
