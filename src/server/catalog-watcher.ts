/**
 * Decides when the catalog looks at its folder: soon after the operating system reports a change in it (fs.watch,
 * coalesced over a few ms), when a settling file is due to have settled (`lookAfter`), and every `rescanMs`
 * whatever happens, as a safety net for the changes a watcher misses (some file systems report nothing; events can
 * be dropped) [P-37]. One look runs at a time; a look asked for during a look runs right after it.
 */
import { type FSWatcher, watch } from 'node:fs';

/** ms during which fs.watch events are gathered into one look */
const COALESCE_MS = 20;

export interface WatcherOptions {
  /** ms between two looks when nothing is reported */
  rescanMs: number;
  /** the look; never called again before its promise settles */
  look: () => Promise<void>;
  /** something went wrong with watching or looking; watching goes on as well as it can */
  onProblem: (error: Error) => void;
}

export class CatalogWatcher {
  readonly #folder: string;
  readonly #options: WatcherOptions;
  #watcher: FSWatcher | null = null;
  #interval: NodeJS.Timeout | null = null;
  #soon: NodeJS.Timeout | null = null;
  #due: { at: number; timer: NodeJS.Timeout } | null = null;
  #looking: Promise<void> | null = null;
  #again = false;
  #closed = false;

  constructor(folder: string, options: WatcherOptions) {
    this.#folder = folder;
    this.#options = options;
  }

  start(): void {
    try {
      this.#watcher = watch(this.#folder, { persistent: false }, () => this.lookSoon());
      this.#watcher.on('error', (error) => {
        this.#options.onProblem(error);
        this.#watcher?.close();
        this.#watcher = null; // the periodic look goes on
      });
    } catch (error) {
      this.#options.onProblem(error as Error); // no watcher on this platform or folder: the periodic look only
    }
    this.#interval = setInterval(() => this.lookNow(), this.#options.rescanMs);
    this.#interval.unref();
  }

  /** A look within a few ms (changes reported together make one look). */
  lookSoon(): void {
    if (this.#closed || this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = null;
      this.lookNow();
    }, COALESCE_MS);
    this.#soon.unref();
  }

  /** A look `ms` from now (a file will have settled by then), unless one is already due sooner. */
  lookAfter(ms: number): void {
    const at = performance.now() + ms; // monotonic: a wall clock stepped back must not push the look away
    if (this.#closed || (this.#due && this.#due.at <= at)) return;
    if (this.#due) clearTimeout(this.#due.timer);
    const timer = setTimeout(() => {
      this.#due = null;
      this.lookNow();
    }, ms);
    timer.unref();
    this.#due = { at, timer };
  }

  /** A look now, or right after the one in progress; resolves when a look that started after this call is done. */
  lookNow(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#looking) {
      this.#again = true; // #run looks once more before its promise settles
      return this.#looking;
    }
    this.#looking = this.#run();
    return this.#looking;
  }

  async #run(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#options.look();
      } catch (error) {
        this.#options.onProblem(error as Error);
      }
    } while (this.#again && !this.#closed);
    this.#looking = null;
  }

  /** Stops watching and the timers; a look in progress finishes, and the promise waits for it. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#interval) clearInterval(this.#interval);
    if (this.#soon) clearTimeout(this.#soon);
    if (this.#due) clearTimeout(this.#due.timer);
    this.#interval = null;
    this.#soon = null;
    this.#due = null;
    await this.#looking;
  }
}
