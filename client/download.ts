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
import type { ImgcacheClient, ProgressListener } from './imgcache-client.ts';

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

/** The unconditional download: always transfers the image (and counts against the quota [P-21]). */
export async function downloadImage(client: ImgcacheClient, image: string, folder: string): Promise<Downloaded> {
  const received = await receiveImage(client, image, folder);
  const { status: _status, ...downloaded } = received;
  return downloaded;
}

/**
 * A get into `folder/image`, conditional when `options.have` is given: on not-modified the target is not touched;
 * otherwise the image lands in a temporary file renamed over the target once END checked out [P-24].
 */
export async function receiveImage(
  client: ImgcacheClient,
  image: string,
  folder: string,
  options: ReceiveOptions = {},
): Promise<Received> {
  if (!isSafeFileName(image)) throw new Error(`refusing to save an image named '${image}': not a plain file name`);
  await mkdir(folder, { recursive: true });
  const target = path.join(folder, image);
  const temporary = path.join(folder, `.${image}.${randomBytes(4).toString('hex')}.part`);
  const file = createWriteStream(temporary, { highWaterMark: FILE_BUFFER_BYTES });
  const fileFailed = once(file, 'error').then(([error]) => Promise.reject(error as Error));
  fileFailed.catch(() => {});
  try {
    const outcome = await Promise.race([
      client.getImage(image, { write: (piece) => (file.write(piece) ? undefined : untilDrained(file)) }, options),
      fileFailed,
    ]);
    if (outcome.status === 'not-modified') {
      await discard(file, temporary);
      const { bytes, sha256, quota } = outcome.reply;
      return { status: 'not-modified', image, path: target, bytes, sha256, quota };
    }
    file.end();
    await Promise.race([once(file, 'finish'), fileFailed]);
    await rename(temporary, target);
    const { bytes, sha256 } = outcome.end;
    return { status: 'downloaded', image, path: target, bytes, sha256, quota: outcome.quota };
  } catch (error) {
    await discard(file, temporary);
    throw error;
  }
}

/** Closes the temporary file (once it is open, if it was still opening) and removes it. */
async function discard(file: WriteStream, temporary: string): Promise<void> {
  if (!file.closed) {
    const closed = once(file, 'close').catch(() => {});
    file.destroy();
    await closed;
  }
  await rm(temporary, { force: true });
}
