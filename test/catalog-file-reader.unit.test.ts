/**
 * Reading a catalogued file, and only that file [P-39]: image-file-reader.ts on a real temporary folder, no sockets.
 * Each case changes the file between two reads, by hand, so that every step is deterministic.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImageChangedError, type ImgcacheError } from '../src/errors.ts';
import { sha256Hex } from '../src/server/image-catalog.ts';
import {
  type CataloguedFile,
  ImageFileReader,
  readIdentifiedFile,
  readIdentifiedFileSync,
} from '../src/server/image-file-reader.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

function bytesOf(length: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, index) => (index * 31 + seed) & 0xff));
}

/** A folder with `a.png` (1000 bytes) and, outside the images, `secret` (a marker); the catalogued view of a.png. */
function withImage(run: (file: CataloguedFile, folder: string, secret: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const folder = makeTemporaryFolder('imgcache-reader-');
    try {
      const image = path.join(folder, 'a.png');
      const content = bytesOf(1000, 3);
      writeFileSync(image, content);
      const secret = path.join(folder, 'secret');
      writeFileSync(secret, 'OUTSIDE-MARKER '.repeat(100));
      const stats = statSync(image);
      const catalogued = {
        name: 'a.png',
        path: image,
        bytes: stats.size,
        mtimeMs: stats.mtimeMs,
        dev: stats.dev,
        ino: stats.ino,
        sha256: sha256Hex(content),
      };
      await run(catalogued, folder, secret);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  };
}

/** The chunks a reader gives until it ends or fails, and how it failed. */
async function drain(reader: ImageFileReader, between: (index: number) => void = () => {}) {
  const chunks: Buffer[] = [];
  try {
    for (let chunk = await reader.next(); chunk !== null; chunk = await reader.next()) {
      chunks.push(chunk);
      between(chunks.length);
    }
    return { bytes: Buffer.concat(chunks), error: null };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error: error as ImgcacheError };
  }
}

function differenceOf(error: ImgcacheError | null): string | undefined {
  return error instanceof ImageChangedError ? error.difference : undefined;
}

test(
  '[P-39] an unchanged file is read whole, in chunks of at most chunkBytes, then null',
  withImage(async (file) => {
    const sizes: number[] = [];
    const { bytes, error } = await drain(new ImageFileReader(file, 300));
    assert.is(error, null);
    assert.ok(bytes.equals(bytesOf(1000, 3)));
    const reader = new ImageFileReader(file, 300);
    for (let chunk = await reader.next(); chunk; chunk = await reader.next()) sizes.push(chunk.length);
    assert.equal(sizes, [300, 300, 300, 100]);
    assert.is(await reader.next(), null, 'stays ended');
  }),
);

test(
  '[P-39] a symbolic link put in place of the image: image-changed (link) before a byte is given',
  withImage(async (file, folder, secret) => {
    symlinkSync(secret, path.join(folder, 'link'));
    renameSync(path.join(folder, 'link'), file.path);
    const { bytes, error } = await drain(new ImageFileReader(file, 300));
    assert.is(error?.code, 'image-changed');
    assert.is(differenceOf(error), 'link');
    assert.is(bytes.length, 0);
  }),
);

test(
  '[P-39] another file renamed over the image (even with the same size): image-changed (inode), nothing given',
  withImage(async (file, folder) => {
    writeFileSync(path.join(folder, 'other'), bytesOf(1000, 9));
    renameSync(path.join(folder, 'other'), file.path);
    const { bytes, error } = await drain(new ImageFileReader(file, 300));
    assert.is(differenceOf(error), 'inode');
    assert.is(bytes.length, 0);
  }),
);

test(
  '[P-39] a file appended to while it is read: never more than the recorded bytes, and the last chunk withheld',
  withImage(async (file) => {
    const { bytes, error } = await drain(new ImageFileReader(file, 300), (index) => {
      if (index === 1) appendFileSync(file.path, 'OUTSIDE-MARKER');
    });
    assert.is(error?.code, 'image-changed');
    assert.ok(['size', 'mtime'].includes(differenceOf(error) ?? ''), differenceOf(error));
    assert.ok(bytes.length < file.bytes, `gave ${bytes.length} of ${file.bytes} bytes`);
    assert.ok(bytes.equals(bytesOf(1000, 3).subarray(0, bytes.length)), 'only the catalogued bytes');
  }),
);

test(
  '[P-39] a file rewritten in place with its size and time kept: the hash check withholds the last chunk',
  withImage(async (image) => {
    utimesSync(image.path, 1e9, 1e9); // a time in whole seconds, so that it can be put back exactly
    const file = { ...image, mtimeMs: statSync(image.path).mtimeMs };
    const { bytes, error } = await drain(new ImageFileReader(file, 300), (index) => {
      if (index !== 1) return;
      writeFileSync(file.path, bytesOf(1000, 4)); // same inode, same size
      utimesSync(file.path, 1e9, 1e9); // and the time put back
    });
    assert.is(differenceOf(error), 'sha256');
    assert.ok(bytes.length < file.bytes);
  }),
);

test(
  '[P-39] a FIFO put in place of the image does not hang the open: image-changed (not-a-file)',
  withImage(async (file, folder) => {
    const fifo = path.join(folder, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return; // no mkfifo here: nothing to test
    renameSync(fifo, file.path);
    const { error } = await drain(new ImageFileReader(file, 300));
    assert.is(differenceOf(error), 'not-a-file');
  }),
);

test(
  '[P-39] a removed file: image-changed (gone); an empty catalogued file ends at once',
  withImage(async (file, folder) => {
    rmSync(file.path);
    assert.is(differenceOf((await drain(new ImageFileReader(file, 300))).error), 'gone');
    const empty = path.join(folder, 'empty.png');
    writeFileSync(empty, '');
    const stats = statSync(empty);
    const catalogued = { ...file, path: empty, bytes: 0, mtimeMs: stats.mtimeMs, ino: stats.ino };
    const reader = new ImageFileReader({ ...catalogued, sha256: sha256Hex(Buffer.alloc(0)) }, 300);
    assert.is(await reader.next(), null);
  }),
);

test(
  '[P-39] close() mid-file stops the reader: the next call gives null',
  withImage(async (file) => {
    const reader = new ImageFileReader(file, 300);
    assert.is((await reader.next())?.length, 300);
    reader.close();
    assert.is(await reader.next(), null);
  }),
);

test(
  '[P-39] the catalog reads (kept or only hashed) the identified file only, never through a link',
  withImage(async (file, folder, secret) => {
    const kept = await readIdentifiedFile(file.name, file.path, file, true);
    assert.equal([kept.sha256, kept.content?.length], [file.sha256, 1000]);
    const hashed = readIdentifiedFileSync(file.name, file.path, file, false);
    assert.equal([hashed.sha256, hashed.content], [file.sha256, null]);
    symlinkSync(secret, path.join(folder, 'link'));
    renameSync(path.join(folder, 'link'), file.path);
    const codes = [
      await readIdentifiedFile(file.name, file.path, file, true).then(
        () => 'read',
        (error: ImgcacheError) => error.code,
      ),
    ];
    try {
      readIdentifiedFileSync(file.name, file.path, file, true);
      codes.push('read');
    } catch (error) {
      codes.push((error as ImgcacheError).code);
    }
    assert.equal(codes, ['image-changed', 'image-changed']);
  }),
);

test.run();
