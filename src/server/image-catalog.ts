/**
 * The images the server hands out: every image file directly inside the cache folder [P-38], each with its size,
 * modification time, device, inode and SHA-256, computed once when the image enters the catalog, never per request.
 *
 * The catalog is live [P-37]: once `watch()` is called, files added to, replaced in or removed from the folder are
 * seen (catalog-watcher.ts says when it looks, catalog-scan.ts decides what a look means). A new or changed file
 * enters only once it has settled and its hash was taken from bytes that did not change while they were read, so a
 * half-written file is never served. Entries are immutable and replaced whole: a `get` in flight keeps the entry it
 * started with. Symbolic links, sub-folders and files whose names the catalog must not hold are not served; such a
 * name is reported once ('skipped'). Settling is timed on a monotonic clock.
 *
 * Every read of a file, to hash it, to hold it or to stream it, goes through image-file-reader.ts: no link is
 * followed and what was opened must be the very file seen (device, inode, size, time), so no byte from outside the
 * folder can be hashed, held or sent [P-39].
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
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { encodeJsonFrame } from '../protocol/frame.ts';
import type { ImageInfo } from '../protocol/messages.ts';
import { MessageType } from '../protocol/messages.ts';
import { type FileSignature, planLook, type SettlingFile } from './catalog-scan.ts';
import { CatalogWatcher } from './catalog-watcher.ts';
import { HotImageCache } from './hot-image-cache.ts';
import { type CataloguedFile, readIdentifiedFile, readIdentifiedFileSync } from './image-file-reader.ts';
import { compareImageNames, type UncataloguedName, uncataloguedName } from './image-name.ts';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.gif', '.webp', '.bmp', '.svg', '.tif', '.tiff', '.avif']);
/** ms between two looks at the folder when the catalog is live, unless configured */
export const DEFAULT_RESCAN_MS = 1_000;

/** An image of the catalog. Its file is identified by (dev, ino, bytes, mtimeMs); only that file is ever read. */
export interface CatalogEntry extends CataloguedFile {
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
  /** [P-38] a file that looks like an image is not catalogued, and why; said once while it stays so */
  skipped: [SkippedFile];
  /** watching or reading went wrong; the catalog goes on with what it has */
  problem: [Error];
}

/** [P-38] Why a file with an image's extension is not catalogued. */
export type SkipReason = UncataloguedName | 'symbolic-link' | 'not-a-regular-file';

export interface SkippedFile {
  name: string;
  reason: SkipReason;
}

export interface CatalogOptions {
  /** ms between two looks when nothing is reported (default 1000) */
  rescanMs?: number;
  /** ms a file must keep its size, time and inode before it enters (default: rescanMs) */
  settleMs?: number;
  /** the clock settling is timed on, in ms: monotonic (default performance.now), never the wall clock */
  now?: () => number;
}

interface Stored {
  entry: CatalogEntry;
  signature: FileSignature;
  /** the entry with the bytes the hot cache last gave for it, made once per held buffer rather than per get */
  heldEntry?: CatalogEntry;
}

/** [P-38] A name with an image's extension (case aside) that is not hidden (no leading dot). */
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
export function catalogEntry(file: string, name: string, signature: FileSignature, sha256: string): CatalogEntry {
  const { bytes, mtimeMs, dev, ino } = signature;
  const info = { name, bytes, modified: new Date(mtimeMs).toISOString(), sha256 };
  const endFrame = encodeJsonFrame(MessageType.END, { bytes, sha256 });
  const members = { command: 'get', status: 'ok', image: name, bytes, sha256, modified: info.modified, stream: true };
  const servedReplyMembers = JSON.stringify(members).slice(1, -1);
  return { name, path: file, bytes, mtimeMs, dev, ino, sha256, content: null, info, endFrame, servedReplyMembers };
}

export class ImageCatalog extends EventEmitter<CatalogEvents> {
  readonly folder: string;
  readonly memoryBudgetBytes: number;
  readonly rescanMs: number;
  readonly settleMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Stored>();
  /** [P-38] the files skipped at the last look, and why: each is reported when it first is, not at every look */
  #skipped = new Map<string, SkipReason>();
  /** the files skipped by the look in progress */
  #skippedNow = new Map<string, SkipReason>();
  #settling = new Map<string, SettlingFile>();
  readonly #hot: HotImageCache;
  readonly #warming = new Set<string>();
  #watcher: CatalogWatcher | null = null;
  #unwatchedLooks: Promise<void> = Promise.resolve();
  #version = 0;
  /** [P-18] the last list built while no file was settling, and the version it is of */
  #listed: { version: number; images: readonly ImageInfo[] } | null = null;
  #closed = false;

  constructor(folder: string, memoryBudgetBytes: number, options: CatalogOptions = {}) {
    super();
    this.folder = path.resolve(folder);
    this.memoryBudgetBytes = memoryBudgetBytes;
    this.rescanMs = options.rescanMs ?? DEFAULT_RESCAN_MS;
    this.settleMs = options.settleMs ?? this.rescanMs;
    this.#now = options.now ?? (() => performance.now());
    this.#hot = new HotImageCache(memoryBudgetBytes);
  }

  /**
   * Reads the folder once, synchronously (at start-up): its images [P-38]. They are held in memory in catalog order
   * while the budget lasts. A file that changed while it was read is left to settle.
   */
  load(): this {
    const now = this.#now();
    const observed = new Map<string, FileSignature>();
    for (const name of this.#imageNames(readdirSync(this.folder))) {
      const stats = statOrNull(() => lstatSync(path.join(this.folder, name)));
      const signature = this.#signature(name, stats);
      if (signature) observed.set(name, signature);
    }
    this.#reportSkipped();
    for (const [name, before] of observed) {
      const hot = this.#hot.usedBytes + before.bytes <= this.memoryBudgetBytes;
      try {
        const { sha256, content } = readIdentifiedFileSync(name, path.join(this.folder, name), before, hot);
        this.#enter(name, before, sha256, content);
      } catch {
        this.#settling.set(name, { signature: before, since: now }); // changed meanwhile: the next looks see it
      }
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

  /** The names of the images that can be served, in no order, read as they are iterated (nothing is copied). */
  *names(): Generator<string> {
    for (const [name, stored] of this.#entries) if (this.#servable(stored)) yield name;
  }

  /**
   * [P-18] The images that can be served, in catalog order (code points of their names, [P-38]); read only. Sorted
   * once per version of the catalog, not per `list` page: while no file is settling every entry can be served, so the
   * same version has the same list. While one is, whether it can be depends on the memory too: it is built afresh.
   */
  list(): readonly ImageInfo[] {
    const listed = this.#listed;
    if (listed !== null && listed.version === this.#version && this.#settling.size === 0) return listed.images;
    const images = [...this.#entries.values()]
      .filter((stored) => this.#servable(stored))
      .map((stored) => describeEntry(stored.entry))
      .sort((a, b) => compareImageNames(a.name, b.name));
    this.#listed = this.#settling.size === 0 ? { version: this.#version, images: Object.freeze(images) } : null;
    return images;
  }

  /** [P-38] The files of the folder that look like images but are not catalogued, and why, as of the last look. */
  skipped(): SkippedFile[] {
    return [...this.#skipped].map(([name, reason]) => ({ name, reason }));
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
    const entry = catalogEntry(path.join(this.folder, name), name, signature, sha256);
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
    const now = this.#now();
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
    this.#watcher.lookAfter(Math.max(0, since + this.settleMs - this.#now()));
  }

  /** The images of the folder now [P-38]; an empty map when the folder is gone, null when it cannot be read. */
  async #observe(): Promise<Map<string, FileSignature> | null> {
    let names: string[];
    try {
      names = this.#imageNames(await readdir(this.folder));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      this.emit('problem', error as Error);
      return null;
    }
    const observed = new Map<string, FileSignature>();
    for (const name of names) {
      const stats = await lstat(path.join(this.folder, name)).catch(() => null);
      const signature = this.#signature(name, stats);
      if (signature) observed.set(name, signature);
    }
    this.#reportSkipped();
    return observed;
  }

  /**
   * [P-38] The names of a listing that may be images, in catalog order; those with an image's extension that the
   * catalog must not hold are noted as skipped.
   */
  #imageNames(names: string[]): string[] {
    this.#skippedNow = new Map();
    const images: string[] = [];
    for (const name of names) {
      if (!isImageFileName(name)) continue;
      const problem = uncataloguedName(name);
      if (problem) this.#skippedNow.set(name, problem);
      else images.push(name);
    }
    return images.sort(compareImageNames);
  }

  /** [P-38] A file's signature when it is a regular file; a link or anything else is noted as skipped. */
  #signature(name: string, stats: Stats | null): FileSignature | null {
    if (!stats) return null; // gone since the listing
    if (stats.isFile()) return { bytes: stats.size, mtimeMs: stats.mtimeMs, dev: stats.dev, ino: stats.ino };
    this.#skippedNow.set(name, stats.isSymbolicLink() ? 'symbolic-link' : 'not-a-regular-file');
    return null;
  }

  /** Reports each file skipped by this look that was not skipped for the same reason by the last one. */
  #reportSkipped(): void {
    const previous = this.#skipped;
    this.#skipped = this.#skippedNow;
    this.#skippedNow = new Map();
    for (const [name, reason] of this.#skipped) {
      if (previous.get(name) !== reason) this.emit('skipped', { name, reason });
    }
  }

  /**
   * Hashes a settled file and enters it, provided it is still the file the look saw, unchanged while it was read
   * (opened without following a link: image-file-reader.ts). Otherwise the next look sees what it has become.
   */
  async #admit(name: string, signature: FileSignature): Promise<void> {
    const file = path.join(this.folder, name);
    let read: { sha256: string; content: Buffer | null };
    try {
      read = await readIdentifiedFile(name, file, signature, this.#hot.fits(signature.bytes));
    } catch {
      // Changed, replaced or gone since the look: it settles again, and the next looks see what it has become.
      this.#settling.set(name, { signature, since: this.#now() });
      this.emit('settling', name);
      return;
    }
    this.#enter(name, signature, read.sha256, read.content);
  }

  /**
   * Reads a cold image into memory after its use, if it fits; kept only if it was read from the entry's very file
   * (image-file-reader.ts) and still hashes to the entry's SHA-256.
   */
  #warm(stored: Stored): void {
    const { entry } = stored;
    const { name, sha256, bytes, path: file } = entry;
    if (this.#closed || !this.#hot.fits(bytes) || this.#warming.has(name)) return;
    this.#warming.add(name);
    readIdentifiedFile(name, file, entry, true)
      .then(({ content, sha256: read }) => {
        if (this.#entries.get(name) !== stored || read !== sha256 || !content) return;
        if (this.#hot.hold(name, sha256, content)) this.emit('held', name);
      })
      .catch(() => {}) // unreadable now: it stays cold, and the next look sees what happened to it
      .finally(() => this.#warming.delete(name));
  }
}

function statOrNull(stat: () => Stats): Stats | null {
  try {
    return stat();
  } catch {
    return null;
  }
}
