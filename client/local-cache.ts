/**
 * The client's cache folder: the downloaded images and a small manifest of what they are (name, SHA-256, size, when
 * and from which server each was fetched). The manifest is what lets a client revalidate instead of download: a
 * `get` carries the hash held [P-34], and an unchanged image comes back not-modified, free [P-35] [P-36].
 *
 * The manifest (`.imgcache-manifest.json`) is only ever replaced whole (a temporary file, synced, then renamed over
 * it), so a crash leaves the old one or the new one. It is a cache of facts about the files, never the truth: on
 * open it is checked against the folder, the way git checks its index against the work tree. A file whose size and
 * modification time are the ones recorded is trusted; any other file (changed, unknown to the manifest, or every
 * file when the manifest is missing or damaged) is hashed again; an entry whose file is gone is dropped.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { MalformedMessageError, type Quota } from '../src/protocol/index.ts';
import { isSafeFileName, receiveImage } from './download.ts';
import type { ImgcacheClient } from './imgcache-client.ts';
import { pipelined } from './pipeline.ts';

export type LocalState = 'absent' | 'current' | 'stale';

export interface ManifestEntry {
  name: string;
  /** lowercase hex SHA-256 of the file's bytes */
  sha256: string;
  bytes: number;
  /** ISO 8601: when the image was downloaded (for a file found in the folder: its modification time) */
  fetchedAt: string;
  /** `host:port` it came from, or `unknown` for a file found in the folder */
  server: string;
}

export type FetchOutcome =
  | { status: 'downloaded'; entry: ManifestEntry; path: string; quota: Quota }
  | { status: 'not-modified'; entry: ManifestEntry; path: string; quota: Quota };

/** One fetch of many ([P-16]): its outcome, or why it failed. */
export type FetchSettled = PromiseSettledResult<FetchOutcome>;

export const MANIFEST_FILE = '.imgcache-manifest.json';
export const UNKNOWN_SERVER = 'unknown';
const MANIFEST_FORMAT = 'imgcache-client-manifest';
const MANIFEST_VERSION = 1;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A manifest entry with the file's modification time when it was recorded, to tell whether it changed since. */
export interface ManifestRecord extends ManifestEntry {
  mtimeMs: number;
}

/** A regular file of the folder as seen now. */
export interface FileStat {
  name: string;
  bytes: number;
  mtimeMs: number;
}

export interface ParsedManifest {
  records: ManifestRecord[];
  /** the text was not a manifest, or some of its entries were unusable (they are left out of `records`) */
  damaged: boolean;
}

/** Pure: the records of a manifest's text; whatever cannot be trusted is left out and the manifest called damaged. */
export function parseManifest(text: string): ParsedManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { records: [], damaged: true };
  }
  if (!isObject(value) || value.format !== MANIFEST_FORMAT || value.version !== MANIFEST_VERSION) {
    return { records: [], damaged: true };
  }
  if (!Array.isArray(value.images)) return { records: [], damaged: true };
  const records: ManifestRecord[] = [];
  const seen = new Set<string>();
  let damaged = false;
  for (const item of value.images as unknown[]) {
    const record = toRecord(item);
    if (record === null || seen.has(record.name)) damaged = true;
    else {
      seen.add(record.name);
      records.push(record);
    }
  }
  return { records, damaged };
}

/** Pure: the manifest's text for these records, sorted by name. */
export function formatManifest(records: Iterable<ManifestRecord>): string {
  const images = [...records].sort((a, b) => compareNames(a.name, b.name));
  return `${JSON.stringify({ format: MANIFEST_FORMAT, version: MANIFEST_VERSION, images }, null, 1)}\n`;
}

export interface ReconcilePlan {
  /** records whose file has the recorded size and modification time */
  trusted: ManifestRecord[];
  /** files to hash: changed since recorded, or unknown to the manifest */
  toHash: FileStat[];
  /** names recorded whose file is gone */
  dropped: string[];
}

/** Pure: which records still describe their file, which files must be hashed, which records are gone. */
export function planReconcile(records: readonly ManifestRecord[], files: readonly FileStat[]): ReconcilePlan {
  const recorded = new Map(records.map((record) => [record.name, record]));
  const present = new Set(files.map((file) => file.name));
  const plan: ReconcilePlan = { trusted: [], toHash: [], dropped: [] };
  for (const file of files) {
    const record = recorded.get(file.name);
    if (record && describesFile(record, file)) plan.trusted.push(record);
    else plan.toHash.push(file);
  }
  for (const record of records) if (!present.has(record.name)) plan.dropped.push(record.name);
  return plan;
}

export class LocalCache {
  readonly folder: string;
  /** the server fetches go to, as `host:port`; recorded in the entries it fetches */
  readonly server: string;
  /** whether open() found the manifest missing, damaged or out of step with the files, and rewrote it */
  readonly rebuilt: boolean;
  readonly #records: Map<string, ManifestRecord>;
  #saving: Promise<void> = Promise.resolve();
  /** a save that has not started writing yet */
  #waitingSave: Promise<void> | null = null;

  private constructor(folder: string, server: string, records: Map<string, ManifestRecord>, rebuilt: boolean) {
    this.folder = folder;
    this.server = server;
    this.#records = records;
    this.rebuilt = rebuilt;
  }

  /** Creates the folder; reads the manifest, or rebuilds it from the files (hashing them) when missing or damaged. */
  static async open(folder: string, server: string): Promise<LocalCache> {
    await mkdir(folder, { recursive: true });
    const manifest = await readManifest(path.join(folder, MANIFEST_FILE));
    const records = new Map(manifest?.records.map((record) => [record.name, record]));
    const changed = await reconcile(folder, records);
    const rebuilt = manifest === null || manifest.damaged || changed;
    const cache = new LocalCache(folder, server, records, rebuilt);
    if (rebuilt) await cache.#save();
    return cache;
  }

  /**
   * Checks the records against the folder again, the way open() does (a file deleted or replaced behind our back is
   * seen), for a cache kept open across many lists: what `list` says is then what a fresh open would say.
   */
  async recheck(): Promise<void> {
    if (await reconcile(this.folder, this.#records)) await this.#save();
  }

  /** The entry of `name` if its file is still the copy recorded (re-hashed when it was touched), else undefined. */
  async check(name: string): Promise<ManifestEntry | undefined> {
    const record = await this.#revalidateLocally(name);
    return record && toEntry(record);
  }

  /** Every image held, sorted by name. */
  entries(): ManifestEntry[] {
    return [...this.#records.values()].sort((a, b) => compareNames(a.name, b.name)).map(toEntry);
  }

  entry(name: string): ManifestEntry | undefined {
    const record = this.#records.get(name);
    return record && toEntry(record);
  }

  /** absent: no copy here; current: the copy has the server's hash; stale: the image changed on the server. */
  stateOf(image: { name: string; sha256: string }): LocalState {
    const record = this.#records.get(image.name);
    if (!record) return 'absent';
    return record.sha256 === image.sha256 ? 'current' : 'stale';
  }

  pathOf(name: string): string {
    if (!isSafeFileName(name)) throw new Error(`'${name}' is not a plain file name`);
    return path.join(this.folder, name);
  }

  /**
   * A conditional get [P-34]: sends the hash of the copy held (after checking that the file still is that copy),
   * leaves the file alone on not-modified [P-35], otherwise writes the new bytes (temporary file, renamed after the
   * END check [P-24]) and records them in the manifest.
   */
  async fetch(
    client: ImgcacheClient,
    name: string,
    onProgress?: (received: number, total: number) => void,
  ): Promise<FetchOutcome> {
    return this.#fetchHeld(client, name, await this.#revalidateLocally(name), onProgress);
  }

  /**
   * Many fetches in one session, pipelined ([P-16], [P-75]): up to `inFlight` requests sent ahead of their answers
   * (1: one at a time), in the order of `names`. Every name's outcome, in order: one that fails does not stop the
   * others, but after one that ends the session the rest fail with the connection's end, not carried out [P-55].
   */
  fetchMany(client: ImgcacheClient, names: readonly string[], inFlight: number): Promise<FetchSettled[]> {
    return pipelined(
      names,
      inFlight,
      (name) => this.#revalidateLocally(name),
      (name, held) => this.#fetchHeld(client, name, held),
    );
  }

  /** The get of `name` with the hash of the copy `held`, sent before the first await ([P-16]: in call order). */
  async #fetchHeld(
    client: ImgcacheClient,
    name: string,
    held: ManifestRecord | undefined,
    onProgress?: (received: number, total: number) => void,
  ): Promise<FetchOutcome> {
    const target = this.pathOf(name);
    const received = await receiveImage(client, name, this.folder, {
      ...(held ? { have: held.sha256 } : {}),
      ...(onProgress ? { onProgress } : {}),
    });
    if (received.status === 'not-modified') {
      if (!held || received.sha256 !== held.sha256) {
        throw new MalformedMessageError(`not-modified for '${name}' does not match the hash that was sent`);
      }
      return { status: 'not-modified', entry: toEntry(held), path: target, quota: received.quota };
    }
    const stats = await lstat(target);
    const record: ManifestRecord = {
      name,
      sha256: received.sha256,
      bytes: received.bytes,
      fetchedAt: new Date().toISOString(),
      server: this.server,
      mtimeMs: stats.mtimeMs,
    };
    this.#records.set(name, record);
    await this.#save();
    return { status: 'downloaded', entry: toEntry(record), path: target, quota: received.quota };
  }

  /** The record of `name` if its file is still the copy recorded (re-hashed when it was touched), else undefined. */
  async #revalidateLocally(name: string): Promise<ManifestRecord | undefined> {
    const record = this.#records.get(name);
    if (!record) return undefined;
    const file = await statFile(this.folder, name);
    if (file && describesFile(record, file)) return record;
    const fresh = file ? await recordOfFile(this.folder, file, record) : null;
    if (fresh) this.#records.set(name, fresh);
    else this.#records.delete(name);
    await this.#save();
    return fresh ?? undefined;
  }

  /**
   * Writes the manifest as it stands, after any write in progress: one writer at a time, the last state wins. Saves
   * asked for while one waits for its turn share it (it takes the state when it starts): many downloads finishing
   * together cost one or two writes of the manifest, not one each.
   */
  #save(): Promise<void> {
    if (this.#waitingSave) return this.#waitingSave;
    const next = this.#saving.then(() => {
      this.#waitingSave = null;
      return writeAtomically(path.join(this.folder, MANIFEST_FILE), this.#snapshot());
    });
    this.#waitingSave = next;
    this.#saving = next.catch(() => {});
    return next;
  }

  #snapshot(): string {
    return formatManifest(this.#records.values());
  }
}

/**
 * Brings `records` in step with the files of `folder` (planReconcile: trusted, re-hashed, dropped); whether anything
 * changed. A record replaced while this runs (a download finishing) is left as the download made it.
 */
async function reconcile(folder: string, records: Map<string, ManifestRecord>): Promise<boolean> {
  const before = new Map(records);
  const plan = planReconcile([...before.values()], await listFiles(folder));
  for (const name of plan.dropped) if (records.get(name) === before.get(name)) records.delete(name);
  for (const file of plan.toHash) {
    const known = before.get(file.name);
    const record = await recordOfFile(folder, file, known);
    if (records.get(file.name) !== known) continue;
    if (record) records.set(file.name, record);
    else records.delete(file.name);
  }
  return plan.toHash.length > 0 || plan.dropped.length > 0;
}

function toEntry(record: ManifestRecord): ManifestEntry {
  const { name, sha256, bytes, fetchedAt, server } = record;
  return { name, sha256, bytes, fetchedAt, server };
}

function describesFile(record: ManifestRecord, file: FileStat): boolean {
  return record.bytes === file.bytes && record.mtimeMs === file.mtimeMs;
}

/** The manifest's records, or null when there is no manifest. */
async function readManifest(file: string): Promise<ParsedManifest | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { records: [], damaged: true };
  }
  return parseManifest(text);
}

/** The regular files of the folder that can be images: plain names (no dot files: the manifest, temporary files). */
async function listFiles(folder: string): Promise<FileStat[]> {
  const files: FileStat[] = [];
  for (const dirent of await readdir(folder, { withFileTypes: true })) {
    if (!dirent.isFile() || !isSafeFileName(dirent.name)) continue;
    const file = await statFile(folder, dirent.name);
    if (file) files.push(file);
  }
  return files;
}

async function statFile(folder: string, name: string): Promise<FileStat | null> {
  try {
    const stats = await lstat(path.join(folder, name));
    return stats.isFile() ? { name, bytes: stats.size, mtimeMs: stats.mtimeMs } : null;
  } catch {
    return null;
  }
}

/** Hashes a file into a record; keeps what was known of it when the bytes are still the ones recorded. */
async function recordOfFile(folder: string, file: FileStat, known?: ManifestRecord): Promise<ManifestRecord | null> {
  let sha256: string;
  try {
    sha256 = await hashFile(path.join(folder, file.name));
  } catch {
    return null; // gone or unreadable since it was listed
  }
  if (known && known.sha256 === sha256 && known.bytes === file.bytes) return { ...known, mtimeMs: file.mtimeMs };
  return {
    name: file.name,
    sha256,
    bytes: file.bytes,
    fetchedAt: new Date(file.mtimeMs).toISOString(),
    server: UNKNOWN_SERVER,
    mtimeMs: file.mtimeMs,
  };
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Replaces `file` whole: a temporary file beside it, synced, then renamed over it. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

function toRecord(item: unknown): ManifestRecord | null {
  if (!isObject(item)) return null;
  const { name, sha256, bytes, fetchedAt, server, mtimeMs } = item;
  if (typeof name !== 'string' || !isSafeFileName(name)) return null;
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) return null;
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) return null;
  if (typeof fetchedAt !== 'string' || Number.isNaN(Date.parse(fetchedAt))) return null;
  if (typeof server !== 'string' || typeof mtimeMs !== 'number' || !Number.isFinite(mtimeMs)) return null;
  return { name, sha256, bytes, fetchedAt, server, mtimeMs };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
