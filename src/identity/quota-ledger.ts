/**
 * [P-64] The running server's count of images each keyed identity has used in its current window, across all its
 * sessions. Seeded from the history at start (db/identity-usage.ts), then kept by the connection glue: one more when
 * an image is served, one less when its transfer does not end whole ([P-42]) or its record fails. A window that has
 * passed counts as zero, so a period's reset needs no timer. Pure: the caller gives every time.
 */

interface Entry {
  windowStart: number;
  used: number;
}

export class QuotaLedger {
  readonly #entries = new Map<string, Entry>();

  /** Images `identity` has used in the window starting at `windowStart`. */
  used(identity: string, windowStart: number): number {
    const entry = this.#entries.get(identity);
    return entry && entry.windowStart === windowStart ? entry.used : 0;
  }

  /** Counts `delta` images (1 or -1) for `identity` in the window starting at `windowStart`. */
  add(identity: string, windowStart: number, delta: number): void {
    const entry = this.#entries.get(identity);
    if (!entry || entry.windowStart < windowStart) {
      if (delta > 0) this.#entries.set(identity, { windowStart, used: delta });
      return;
    }
    if (entry.windowStart !== windowStart) return; // a window already over: nothing to take back now
    entry.used = Math.max(0, entry.used + delta);
  }

  /** Seeds the count of `identity` (from the history). */
  set(identity: string, windowStart: number, used: number): void {
    this.#entries.set(identity, { windowStart, used });
  }
}
