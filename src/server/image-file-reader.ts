/**
 * Reading the file of a catalogued image, and nothing else [P-38] [P-39].
 *
 * A name in the folder can be made to point elsewhere at any moment (replaced by a symbolic link, renamed over,
 * rewritten, appended to), so a path is never trusted at the moment it is read. The file is opened without following
 * a link (O_NOFOLLOW; O_NONBLOCK too, so that a FIFO put in its place cannot hang the open), and what was opened is
 * compared with what the catalog recorded: device, inode, size and modification time. Then at most the recorded
 * size is read, and the bytes are hashed as they go. The last chunk is handed out only once everything checks out:
 * the file still has the recorded identity (so it did not grow or shrink meanwhile) and the bytes hash to the
 * recorded SHA-256. Otherwise the reader fails with `ImageChangedError` (`image-changed`) instead of giving the last
 * chunk, so a stream of a changed file never gets its END ([P-24]); an I/O error is `ImageReadFailedError`
 * (`image-read-failed`).
 *
 * The catalog reads files through the same door when it admits them or takes them into memory, so neither its
 * hashes nor the bytes it holds can come from outside the folder.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { ImageChangedError, ImageReadFailedError } from '../errors.ts';

/** What identifies one version of a file without reading it (all from one `stat`). */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  /** the file's size */
  readonly bytes: number;
  readonly mtimeMs: number;
}

/** A file as the catalog recorded it: where it is, what it is, and the hash of its bytes. */
export interface CataloguedFile extends FileIdentity {
  readonly name: string;
  readonly path: string;
  readonly sha256: string;
}

/** Never follow a link; never wait on a FIFO or a device put where an image was. */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
/** bytes read at a time when only hashing */
const HASH_CHUNK_BYTES = 1024 * 1024;

/** What differs between an opened file's stats and the recorded identity, or null when it is the same file. */
export function identityDifference(stats: Stats, expected: FileIdentity): string | null {
  if (!stats.isFile()) return 'not-a-file';
  if (stats.dev !== expected.dev) return 'device';
  if (stats.ino !== expected.ino) return 'inode';
  if (stats.size !== expected.bytes) return 'size';
  if (stats.mtimeMs !== expected.mtimeMs) return 'mtime';
  return null;
}

/** Fails with `image-changed` when what was opened is not the file `expected` describes. */
function checkIdentity(name: string, stats: Stats, expected: FileIdentity): void {
  const difference = identityDifference(stats, expected);
  if (difference) throw new ImageChangedError(name, difference);
}

/** The identity of a regular file's stats; null for anything else. */
export function identityOf(stats: Stats): FileIdentity | null {
  return stats.isFile() ? { dev: stats.dev, ino: stats.ino, bytes: stats.size, mtimeMs: stats.mtimeMs } : null;
}

/** An error of opening or reading, as one of ours: a link or a missing file is a changed image, the rest a failure. */
function readError(name: string, error: unknown): ImageChangedError | ImageReadFailedError {
  if (error instanceof ImageChangedError || error instanceof ImageReadFailedError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ELOOP' || code === 'EMLINK') return new ImageChangedError(name, 'link', { cause: error });
  if (code === 'ENOENT' || code === 'ENOTDIR') return new ImageChangedError(name, 'gone', { cause: error });
  return new ImageReadFailedError(name, error as Error);
}

/**
 * Streams a catalogued file from disk: `next()` gives its bytes in chunks of at most `chunkBytes`, then null once
 * all `bytes` went out and checked out; it rejects with `image-changed` or `image-read-failed` instead. One call at a
 * time; the chunk after the one just given is read ahead while the caller writes it. `close()` when giving up early.
 */
export class ImageFileReader {
  readonly #file: CataloguedFile;
  readonly #chunkBytes: number;
  readonly #hash = createHash('sha256');
  #handle: Promise<FileHandle> | null = null;
  #position = 0;
  #ahead: Promise<Buffer | null> | null = null;
  #released = false;
  /** close() was called */
  #stopped = false;

  constructor(file: CataloguedFile, chunkBytes: number) {
    this.#file = file;
    this.#chunkBytes = Math.max(1, chunkBytes);
  }

  /** Image bytes handed out so far (each checked against the recorded identity when the file was opened). */
  get position(): number {
    return this.#position;
  }

  next(): Promise<Buffer | null> {
    if (this.#stopped) return Promise.resolve(null);
    const current = this.#ahead ?? this.#read();
    const ahead = current.then((chunk) => (chunk !== null && !this.#released ? this.#read() : null));
    ahead.catch(() => {}); // its failure, if any, is the answer to the next call
    this.#ahead = ahead;
    return current;
  }

  /** Stops reading: the file is closed once a read in progress is done. */
  close(): void {
    this.#stopped = true;
    this.#release();
  }

  async #read(): Promise<Buffer | null> {
    const { name, bytes } = this.#file;
    if (this.#released) return null;
    try {
      this.#handle ??= this.#open();
      const handle = await this.#handle;
      if (this.#position >= bytes && bytes > 0) return null;
      const length = Math.min(this.#chunkBytes, bytes - this.#position);
      const chunk = Buffer.allocUnsafe(length);
      for (let filled = 0; filled < length; ) {
        const { bytesRead } = await handle.read(chunk, filled, length - filled, this.#position + filled);
        if (bytesRead === 0) throw new ImageChangedError(name, 'shorter');
        filled += bytesRead;
      }
      this.#hash.update(chunk);
      if (this.#position + length === bytes) await this.#verifyWhole(handle);
      this.#position += length;
      return length > 0 ? chunk : null;
    } catch (error) {
      this.#release();
      throw readError(name, error);
    }
  }

  async #open(): Promise<FileHandle> {
    const handle = await open(this.#file.path, OPEN_FLAGS);
    try {
      checkIdentity(this.#file.name, await handle.stat(), this.#file);
      return handle;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Before the last chunk goes out: still the same file (it neither grew nor was rewritten), and the right bytes. */
  async #verifyWhole(handle: FileHandle): Promise<void> {
    checkIdentity(this.#file.name, await handle.stat(), this.#file);
    if (this.#hash.digest('hex') !== this.#file.sha256) throw new ImageChangedError(this.#file.name, 'sha256');
    this.#release();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#handle?.then(
      (handle) => handle.close(),
      () => {},
    );
  }
}

/** A file read by the catalog: its SHA-256, and its bytes when asked to keep them. */
export interface IdentifiedContent {
  sha256: string;
  content: Buffer | null;
}

/**
 * One read of a whole identified file, apart from how its bytes are read (with or without waiting): where each read
 * goes, what it brought, and the hash (and the content when kept) once `bytes` are in. The async and the sync reader
 * below differ only in the calls that open, stat and read.
 */
class IdentifiedRead {
  readonly #name: string;
  readonly #bytes: number;
  readonly #hash = createHash('sha256');
  /** the whole content when kept; else null, and the bytes go through a smaller buffer into the hash */
  readonly #content: Buffer | null;
  readonly #buffer: Buffer;
  #position = 0;

  constructor(name: string, bytes: number, keep: boolean) {
    this.#name = name;
    this.#bytes = bytes;
    this.#content = keep ? Buffer.allocUnsafe(bytes) : null;
    this.#buffer = this.#content ?? Buffer.allocUnsafe(Math.min(HASH_CHUNK_BYTES, bytes));
  }

  /** The next read to make (into `buffer` at `offset`, `length` bytes of the file at `position`); null once done. */
  next(): { buffer: Buffer; offset: number; length: number; position: number } | null {
    if (this.#position >= this.#bytes) return null;
    const offset = this.#content ? this.#position : 0;
    const length = Math.min(this.#buffer.length - offset, this.#bytes - this.#position);
    return { buffer: this.#buffer, offset, length, position: this.#position };
  }

  /** What the read `next()` asked for brought; none means the file is shorter than recorded. */
  took(bytesRead: number): void {
    if (bytesRead === 0) throw new ImageChangedError(this.#name, 'shorter');
    if (!this.#content) this.#hash.update(this.#buffer.subarray(0, bytesRead));
    this.#position += bytesRead;
  }

  result(): IdentifiedContent {
    if (this.#content) this.#hash.update(this.#content);
    return { sha256: this.#hash.digest('hex'), content: this.#content };
  }
}

/**
 * Reads (`keep`) or only hashes the regular file at `file`, provided it is the one `expected` describes, before and
 * after the read; rejects with `image-changed` when it is not (a link, another file, changed meanwhile).
 */
export async function readIdentifiedFile(
  name: string,
  file: string,
  expected: FileIdentity,
  keep: boolean,
): Promise<IdentifiedContent> {
  let handle: FileHandle | null = null;
  try {
    handle = await open(file, OPEN_FLAGS);
    checkIdentity(name, await handle.stat(), expected);
    const read = new IdentifiedRead(name, expected.bytes, keep);
    for (let step = read.next(); step; step = read.next()) {
      read.took((await handle.read(step.buffer, step.offset, step.length, step.position)).bytesRead);
    }
    checkIdentity(name, await handle.stat(), expected);
    return read.result();
  } catch (error) {
    throw readError(name, error);
  } finally {
    await handle?.close();
  }
}

/** readIdentifiedFile, synchronously (for the catalog's first read of its folder, at start-up). */
export function readIdentifiedFileSync(
  name: string,
  file: string,
  expected: FileIdentity,
  keep: boolean,
): IdentifiedContent {
  let fd: number | null = null;
  try {
    fd = openSync(file, OPEN_FLAGS);
    checkIdentity(name, fstatSync(fd), expected);
    const read = new IdentifiedRead(name, expected.bytes, keep);
    for (let step = read.next(); step; step = read.next()) {
      read.took(readSync(fd, step.buffer, step.offset, step.length, step.position));
    }
    checkIdentity(name, fstatSync(fd), expected);
    return read.result();
  } catch (error) {
    throw readError(name, error);
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
