/**
 * The images the server hands out: every image file directly inside the cache folder, each with its size,
 * modification time and SHA-256, computed once when it enters the catalog. Images that fit in the memory budget are
 * held in memory (hot), the rest are streamed from disk when requested.
 *
 * A name is looked up as a key of this map, never joined to a path: a request for `../x`, an absolute path or a
 * name with a NUL byte cannot match an entry, so it cannot leave the folder.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ImageInfo } from '../protocol/messages.ts';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.gif', '.webp', '.bmp', '.svg', '.tif', '.tiff', '.avif']);

export interface CatalogEntry {
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
  readonly mtimeMs: number;
  readonly sha256: string;
  /** the image's bytes when it is held in memory */
  readonly content: Buffer | null;
}

export function isImageFileName(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function describeEntry(entry: CatalogEntry): ImageInfo {
  return {
    name: entry.name,
    bytes: entry.bytes,
    modified: new Date(entry.mtimeMs).toISOString(),
    sha256: entry.sha256,
  };
}

export class ImageCatalog {
  readonly #entries = new Map<string, CatalogEntry>();
  readonly folder: string;
  readonly memoryBudgetBytes: number;

  constructor(folder: string, memoryBudgetBytes: number) {
    this.folder = path.resolve(folder);
    this.memoryBudgetBytes = memoryBudgetBytes;
  }

  /** Reads the folder: regular files with an image extension (symbolic links and sub-folders are not served). */
  load(): this {
    let memoryUsed = 0;
    const names = readdirSync(this.folder).filter(isImageFileName).sort();
    for (const name of names) {
      const file = path.join(this.folder, name);
      const stats = lstatSync(file);
      if (!stats.isFile()) continue;
      const bytes = readFileSync(file);
      const hot = memoryUsed + bytes.length <= this.memoryBudgetBytes;
      if (hot) memoryUsed += bytes.length;
      this.#entries.set(name, {
        name,
        path: file,
        bytes: bytes.length,
        mtimeMs: stats.mtimeMs,
        sha256: sha256Hex(bytes),
        content: hot ? bytes : null,
      });
    }
    return this;
  }

  get(name: string): CatalogEntry | undefined {
    return this.#entries.get(name);
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  get size(): number {
    return this.#entries.size;
  }

  list(): ImageInfo[] {
    return [...this.#entries.values()].map(describeEntry);
  }
}
