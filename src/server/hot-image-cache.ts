/**
 * The images held in memory, within a byte budget. Policy: least recently used. Every use of an image (a lookup
 * for a `get`) makes it the most recent; an image that is not held is read in after its use, when it fits in the
 * budget at all, and the least recently used ones are let go until the budget holds. The rest are streamed from disk.
 *
 * An image is held under its name together with its SHA-256, so bytes of an older version of the file are never
 * mistaken for the current ones.
 */

interface Held {
  sha256: string;
  content: Buffer;
}

export class HotImageCache {
  readonly budgetBytes: number;
  /** in order of use: the first is the least recently used (a Map keeps insertion order) */
  readonly #held = new Map<string, Held>();
  #usedBytes = 0;

  constructor(budgetBytes: number) {
    this.budgetBytes = budgetBytes;
  }

  get usedBytes(): number {
    return this.#usedBytes;
  }

  get count(): number {
    return this.#held.size;
  }

  /** The bytes of this version of the image when held (marking it used), else null. */
  use(name: string, sha256: string): Buffer | null {
    const held = this.#held.get(name);
    if (!held || held.sha256 !== sha256) return null;
    this.#held.delete(name);
    this.#held.set(name, held);
    return held.content;
  }

  /** Whether this version of the image is held (without counting it as a use). */
  has(name: string, sha256: string): boolean {
    return this.#held.get(name)?.sha256 === sha256;
  }

  /** Whether an image of this size can be held at all. */
  fits(bytes: number): boolean {
    return bytes <= this.budgetBytes;
  }

  /** Holds these bytes as the most recently used, letting the least recently used go; false when they cannot fit. */
  hold(name: string, sha256: string, content: Buffer): boolean {
    if (!this.fits(content.length)) return false;
    this.drop(name);
    for (const [victim, held] of this.#held) {
      if (this.#usedBytes + content.length <= this.budgetBytes) break;
      this.#held.delete(victim);
      this.#usedBytes -= held.content.length;
    }
    this.#held.set(name, { sha256, content });
    this.#usedBytes += content.length;
    return true;
  }

  /** Holds these bytes only if there is room without letting anything go. */
  holdIfRoom(name: string, sha256: string, content: Buffer): boolean {
    const current = this.#held.get(name)?.content.length ?? 0;
    if (this.#usedBytes - current + content.length > this.budgetBytes) return false;
    return this.hold(name, sha256, content);
  }

  drop(name: string): void {
    const held = this.#held.get(name);
    if (!held) return;
    this.#held.delete(name);
    this.#usedBytes -= held.content.length;
  }
}
