/**
 * Downloads an image into the client's cache folder without ever leaving a corrupt file there: the bytes go to a
 * temporary file beside the target, which is renamed into place only after the length and SHA-256 announced by the
 * server's END frame matched what arrived [P-24].
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Quota } from '../src/protocol/index.ts';
import type { ImgcacheClient } from './imgcache-client.ts';

export const DEFAULT_CACHE_DIR = 'client-cache';

export interface Downloaded {
  image: string;
  path: string;
  bytes: number;
  sha256: string;
  quota: Quota;
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

export async function downloadImage(client: ImgcacheClient, image: string, folder: string): Promise<Downloaded> {
  if (!isSafeFileName(image)) throw new Error(`refusing to save an image named '${image}': not a plain file name`);
  await mkdir(folder, { recursive: true });
  const target = path.join(folder, image);
  const temporary = path.join(folder, `.${image}.${randomBytes(4).toString('hex')}.part`);
  const file = createWriteStream(temporary);
  const fileFailed = once(file, 'error').then(([error]) => Promise.reject(error as Error));
  fileFailed.catch(() => {});
  try {
    const result = await Promise.race([
      client.getInto(image, {
        write: (piece) => (file.write(piece) ? undefined : untilDrained(file)),
      }),
      fileFailed,
    ]);
    file.end();
    await Promise.race([once(file, 'finish'), fileFailed]);
    await rename(temporary, target);
    return { image, path: target, bytes: result.end.bytes, sha256: result.end.sha256, quota: result.quota };
  } catch (error) {
    file.destroy();
    await rm(temporary, { force: true });
    throw error;
  }
}
