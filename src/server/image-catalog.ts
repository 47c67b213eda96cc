/**
 * The images the server hands out: every image file directly inside the cache folder, each with its size,
 * modification time and SHA-256, computed once when the image enters the catalog, never per request.
 *
 * The catalog is live [P-37]: once `watch()` is called, files added to, replaced in or removed from the folder are
 * seen (catalog-watcher.ts says when it looks, catalog-scan.ts decides what a look means). A new or changed file
 * enters only once it has settled and its hash was taken from bytes that did not change while they were read, so a
 * half-written file is never served. Entries are immutable and replaced whole: a `get` in flight keeps the entry it
 * started with. Symbolic links and sub-folders are not served.
 *
 * Hot images are held in memory within the budget (hot-image-cache.ts: least recently used), the rest are streamed
 * from disk. While a file is being rewritten, its old version is still served if it is held in memory; otherwise
 * the disk no longer holds the bytes of its entry, so it is answered as missing until the new version settles.
 *
 * A name is looked up as a key of a map, never joined to a path: a request for `../x`, an absolute path or a name
 * with a NUL byte cannot match an entry, so it cannot leave the folder.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, createReadStream, lstatSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeJsonFrame } from '../protocol/frame.ts';
import type { ImageInfo } from '../protocol/messages.ts';
import { MessageType } from '../protocol/messages.ts';
import { type FileSignature, planLook, type SettlingFile, sameSignature } from './catalog-scan.ts';
import { CatalogWatcher } from './catalog-watcher.ts';
import { HotImageCache } from './hot-image-cache.ts';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.gif', '.webp', '.bmp', '.svg', '.tif', '.tiff', '.avif']);
/** ms between two looks at the folder when the catalog is live, unless configured */
export const DEFAULT_RESCAN_MS = 1_000;

export interface CatalogEntry {
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
  readonly mtimeMs: number;
  readonly sha256: string;
  /** the image's bytes when it is held in memory */
  readonly content: Buffer | null;
  /** [P-18] its description, computed once when it enters the catalog */
  readonly info: ImageInfo;
  /** [P-24] the END frame that closes every transfer of these bytes, encoded once */
  readonly endFrame: Buffer;
  /** [P-19] the members of the REPLY to a get of these bytes but `id` and `quota`, as JSON text, encoded once */
  readonly servedReplyMembers: string;
}

/** One change of the catalog, in order; `version` is the catalog's version after it. */
export interface CatalogChange {
  kind: 'added' | 'changed' | 'removed';
  name: string;
  /** the new SHA-256; null when removed */
  sha256: string | null;
  version: number;
}

export interface CatalogEvents {
  change: [CatalogChange];
  /** a new or changed file was seen; it enters once it has settled */
  settling: [string];
  /** a look at the folder is done; the catalog's version */
  look: [number];
  /** an image streamed from disk was read into memory after its use (hot-image-cache.ts) */
  held: [string];
  /** watching or reading went wrong; the catalog goes on with what it has */
  problem: [Error];
}

export interface CatalogOptions {
  /** ms between two looks when nothing is reported (default 1000) */
  rescanMs?: number;
  /** ms a file must keep its size, time and inode before it enters (default: rescanMs) */
  settleMs?: number;
}

interface Stored {
  entry: CatalogEntry;
  signature: FileSignature;
  /** the entry with the bytes the hot cache last gave for it, made once per held buffer rather than per get */
  heldEntry?: CatalogEntry;
}

export function isImageFileName(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function describeEntry(entry: CatalogEntry): ImageInfo {
  return entry.info;
}

/** An entry's constant parts: what every answer about these bytes repeats is computed once, here. */
export function catalogEntry(file: string, name: string, bytes: number, mtimeMs: number, sha256: string): CatalogEntry {
  const info = { name, bytes, modified: new Date(mtimeMs).toISOString(), sha256 };
  const endFrame = encodeJsonFrame(MessageType.END, { bytes, sha256 });
  const members = { command: 'get', status: 'ok', image: name, bytes, sha256, modified: info.modified, stream: true };
  const servedReplyMembers = JSON.stringify(members).slice(1, -1);
  return { name, path: file, bytes, mtimeMs, sha256, content: null, info, endFrame, servedReplyMembers };
}

export class ImageCatalog extends EventEmitter<CatalogEvents> {
  readonly folder: string;
  readonly memoryBudgetBytes: number;
  readonly rescanMs: number;
  readonly settleMs: number;
  readonly #entries = new Map<string, Stored>();
  #settling = new Map<string, SettlingFile>();
  readonly #hot: HotImageCache;
  readonly #warming = new Set<string>();
  #watcher: CatalogWatcher | null = null;
  #unwatchedLooks: Promise<void> = Promise.resolve();
  #version = 0;
  #closed = false;

  constructor(folder: string, memoryBudgetBytes: number, options: CatalogOptions = {}) {
    super();
    this.folder = path.resolve(folder);
    this.memoryBudgetBytes = memoryBudgetBytes;
    this.rescanMs = options.rescanMs ?? DEFAULT_RESCAN_MS;
    this.settleMs = options.settleMs ?? this.rescanMs;
    this.#hot = new HotImageCache(memoryBudgetBytes);
  }

  /**
   * Reads the folder once, synchronously (at start-up): regular files with an image extension. Images are held in
   * memory in name order while the budget lasts. A file that changed while it was read is left to settle.
   */
  load(): this {
    const now = Date.now();
    for (const name of readdirSync(this.folder).filter(isImageFileName).sort()) {
      const file = path.join(this.folder, name);
      const before = signatureOfSync(file);
      if (!before) continue;
      const hot = this.#hot.usedBytes + before.bytes <= this.memoryBudgetBytes;
      const content = hot ? readFileSync(file) : null;
      const sha256 = content ? sha256Hex(content) : hashFileSync(file);
      const after = signatureOfSync(file);
      if (after && sameSignature(before, after) && (content === null || content.length === before.bytes)) {
        this.#enter(name, after, sha256, content);
      } else if (after) this.#settling.set(name, { signature: after, since: now });
    }
    return this;
  }

  /** [P-37] Keeps the catalog in step with the folder until close(). */
  watch(): this {
    if (this.#watcher || this.#closed) return this;
    this.#watcher = new CatalogWatcher(this.folder, {
      rescanMs: this.rescanMs,
      look: () => this.#look(),
      onProblem: (error) => this.emit('problem', error),
    });
    this.#watcher.start();
    return this;
  }

  /** Looks at the folder now (or right after the look in progress); resolves when that look is done. */
  async rescan(): Promise<void> {
    if (this.#watcher) return this.#watcher.lookNow();
    if (this.#closed) return;
    const look = this.#unwatchedLooks.then(() => this.#look()); // one look at a time, as under the watcher
    this.#unwatchedLooks = look.catch(() => {});
    return look;
  }

  /** Stops watching; waits for a look in progress. The entries stay readable. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#watcher?.close();
    this.#watcher = null;
  }

  /** Goes up by one with every change of the catalog. */
  get version(): number {
    return this.#version;
  }

  /**
   * The entry to serve for `name` (its bytes attached when held in memory), or undefined. Counts as a use of the
   * image for the memory policy. The entry returned never changes, whatever happens to the file afterwards.
   */
  get(name: string): CatalogEntry | undefined {
    const stored = this.#entries.get(name);
    if (!stored) return undefined;
    const content = this.#hot.use(name, stored.entry.sha256);
    if (content) {
      if (stored.heldEntry?.content !== content) stored.heldEntry = { ...stored.entry, content };
      return stored.heldEntry;
    }
    if (this.#settling.has(name)) return undefined; // the file no longer holds this entry's bytes
    this.#warm(stored);
    return stored.entry;
  }

  has(name: string): boolean {
    const stored = this.#entries.get(name);
    return stored !== undefined && this.#servable(stored);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** [P-18] The images that can be served, sorted by name. */
  list(): ImageInfo[] {
    return [...this.#entries.values()]
      .filter((stored) => this.#servable(stored))
      .map((stored) => describeEntry(stored.entry))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Bytes held in memory, and how many images. */
  memoryUse(): { bytes: number; images: number } {
    return { bytes: this.#hot.usedBytes, images: this.#hot.count };
  }

  #servable(stored: Stored): boolean {
    return !this.#settling.has(stored.entry.name) || this.#hot.has(stored.entry.name, stored.entry.sha256);
  }

  #enter(name: string, signature: FileSignature, sha256: string, content: Buffer | null): void {
    const previous = this.#entries.get(name);
    const entry = catalogEntry(path.join(this.folder, name), name, signature.bytes, signature.mtimeMs, sha256);
    this.#entries.set(name, { entry, signature });
    this.#settling.delete(name);
    if (!content || !this.#hot.holdIfRoom(name, sha256, content)) this.#hot.drop(name);
    this.#changed(previous ? 'changed' : 'added', name, sha256);
  }

  #remove(name: string): void {
    this.#entries.delete(name);
    this.#hot.drop(name);
    this.#changed('removed', name, null);
  }

  #changed(kind: CatalogChange['kind'], name: string, sha256: string | null): void {
    this.#version++;
    this.emit('change', { kind, name, sha256, version: this.#version });
  }

  /** One look at the folder: removals at once, new and changed files once settled. */
  async #look(): Promise<void> {
    const now = Date.now();
    const observed = await this.#observe();
    if (!observed) return;
    const entered = new Map([...this.#entries].map(([name, stored]) => [name, stored.signature]));
    const plan = planLook({ entries: entered, settling: this.#settling }, observed, now, this.settleMs);
    this.#settling = plan.settling;
    for (const name of plan.removed) this.#remove(name);
    for (const name of plan.started) this.emit('settling', name);
    for (const { name, signature } of plan.settled) await this.#admit(name, signature);
    this.#lookWhenSettled();
    this.emit('look', this.#version);
  }

  /** Asks for a look when the first settling file will have kept still for settleMs, rather than at a later tick. */
  #lookWhenSettled(): void {
    if (!this.#watcher || this.#settling.size === 0) return;
    const since = Math.min(...[...this.#settling.values()].map((settling) => settling.since));
    this.#watcher.lookAfter(Math.max(0, since + this.settleMs - Date.now()));
  }

  /** The regular image files of the folder now; an empty map when the folder is gone, null when it cannot be read. */
  async #observe(): Promise<Map<string, FileSignature> | null> {
    let names: string[];
    try {
      names = (await readdir(this.folder)).filter(isImageFileName);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      this.emit('problem', error as Error);
      return null;
    }
    const observed = new Map<string, FileSignature>();
    for (const name of names) {
      const signature = await signatureOf(path.join(this.folder, name));
      if (signature) observed.set(name, signature);
    }
    return observed;
  }

  /** Hashes a settled file and enters it, unless it changed while it was read (then it settles again). */
  async #admit(name: string, signature: FileSignature): Promise<void> {
    const file = path.join(this.folder, name);
    let sha256: string;
    let content: Buffer | null = null;
    let after: FileSignature | null;
    try {
      if (this.#hot.fits(signature.bytes)) {
        content = await readFile(file);
        sha256 = sha256Hex(content);
      } else sha256 = await hashFile(file);
      after = await signatureOf(file);
    } catch {
      return; // gone since the look: the next look removes its entry, if it has one
    }
    if (after && sameSignature(after, signature) && (content === null || content.length === signature.bytes)) {
      this.#enter(name, after, sha256, content);
    } else if (after) {
      this.#settling.set(name, { signature: after, since: Date.now() });
      this.emit('settling', name);
    }
  }

  /** Reads a cold image into memory after its use, if it fits; kept only if it is still the entry's bytes. */
  #warm(stored: Stored): void {
    const { name, sha256, bytes, path: file } = stored.entry;
    if (this.#closed || !this.#hot.fits(bytes) || this.#warming.has(name)) return;
    this.#warming.add(name);
    readFile(file)
      .then((content) => {
        if (this.#entries.get(name) !== stored || sha256Hex(content) !== sha256) return;
        if (this.#hot.hold(name, sha256, content)) this.emit('held', name);
      })
      .catch(() => {}) // unreadable now: it stays cold, and the next look sees what happened to it
      .finally(() => this.#warming.delete(name));
  }
}

function toSignature(stats: { isFile(): boolean; size: number; mtimeMs: number; ino: number }): FileSignature | null {
  return stats.isFile() ? { bytes: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino } : null;
}

/** A regular file's signature; null for anything else (symbolic links and folders are not served) or nothing. */
async function signatureOf(file: string): Promise<FileSignature | null> {
  try {
    return toSignature(await lstat(file));
  } catch {
    return null;
  }
}

function signatureOfSync(file: string): FileSignature | null {
  try {
    return toSignature(lstatSync(file));
  } catch {
    return null;
  }
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function hashFileSync(file: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  const fd = openSync(file, 'r');
  try {
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) hash.update(buffer.subarray(0, read));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
