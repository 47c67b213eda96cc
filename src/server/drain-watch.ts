/**
 * Outbound backpressure with a deadline. When the socket's buffer is full, wait for 'drain'; but a client that
 * stops reading (its receive window full) would hold its slot and its buffered answer forever, so a reader that
 * takes none of the pending bytes for `stallMs` is declared stalled. A slow reader that keeps making progress is
 * not cut off: the deadline restarts whenever the amount still buffered goes down.
 */
import type { Duplex } from 'node:stream';

export class DrainWaiter {
  readonly #stream: Duplex;
  readonly #stallMs: number;
  readonly #lookMs: number;
  readonly #reportedProgressAt: () => number;
  /** the wait in progress: at most one, the writer waits for one answer's bytes at a time */
  #onDrained: (() => void) | null = null;
  #onStalled: (() => void) | null = null;
  #lastPending = 0;
  #lastProgressAt = 0;
  /** armed by a wait, kept while waits follow one another, cleared at the first look that finds none */
  #timer: NodeJS.Timeout | null = null;

  constructor(stream: Duplex, stallMs: number, reportedProgressAt: () => number = () => Number.NEGATIVE_INFINITY) {
    this.#stream = stream;
    this.#stallMs = stallMs;
    // [P-41] Looked at four times per deadline, so that a stall is cut between stallMs and 1.25 stallMs after the
    // last progress seen: bytes the kernel took, or a progress receipt from the client [P-40] (the kernel wakes a
    // writer only once much of its buffer is free, so a slow reader's progress may not show here otherwise).
    this.#lookMs = Math.max(1, Math.floor(stallMs / 4));
    this.#reportedProgressAt = reportedProgressAt;
    stream.on('drain', () => this.#drained());
    stream.once('close', () => this.#stop());
  }

  /**
   * Calls `onDrained` once the stream has taken all that is written, or `onStalled` if it takes none of it for the
   * deadline. One listener and one timer per connection, not per wait: an answer that fills the buffer costs no timer.
   */
  wait(onDrained: () => void, onStalled: () => void): void {
    if (this.#stream.destroyed) return;
    this.#onDrained = onDrained;
    this.#onStalled = onStalled;
    this.#lastPending = this.#stream.writableLength;
    this.#lastProgressAt = performance.now();
    if (this.#timer === null) this.#timer = setInterval(() => this.#look(), this.#lookMs);
  }

  #drained(): void {
    const onDrained = this.#onDrained;
    if (onDrained === null) return;
    this.#onDrained = null;
    this.#onStalled = null;
    onDrained();
  }

  #look(): void {
    const onStalled = this.#onStalled;
    if (onStalled === null) {
      this.#clearTimer(); // no wait since the last look: the timer is not needed until the next one
      return;
    }
    const pending = this.#stream.writableLength;
    const now = performance.now();
    if (pending < this.#lastPending) {
      this.#lastPending = pending;
      this.#lastProgressAt = now;
      return;
    }
    if (now - Math.max(this.#lastProgressAt, this.#reportedProgressAt()) < this.#stallMs) return;
    this.#stop();
    onStalled();
  }

  #stop(): void {
    this.#onDrained = null;
    this.#onStalled = null;
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/**
 * [P-40] How much more a progress receipt must say was read than the last one that counted, to count as progress:
 * a reader slower than this per drain deadline (some 4 KB/s at 15 s) is cut, and a client that claims progress
 * without reading holds its stream at most one deadline per step of what the server handed it.
 */
export const PROGRESS_STEP_BYTES = 64 * 1024;

/**
 * [P-40] [P-41] Delivery: a stream (an image or usage answer) counts as delivered when its RECEIVED arrives, not when
 * the kernel took its bytes. A stream awaits its receipt from its REPLY on; once its END is written, the receipt must
 * come within `deadlineMs` of the last progress: the END itself, or the last time the kernel took bytes of the
 * connection (a 'drain'). A stream whose receipt does not come is stalled, and the connection is cut.
 *
 * A reader that stops reading once the rest of an answer fits in the kernel's buffers would otherwise look done to
 * the server: the writes complete, and nothing but the idle timeout would ever free its slot.
 *
 * One timer per connection, armed when a stream's END is written and none is armed, re-armed for the time left when
 * it falls due: no timer per answer.
 */
export class ReceiptWatch {
  readonly #deadlineMs: number;
  readonly #onStalled: (requestId: number) => void;
  readonly #now: () => number;
  /**
   * streams awaiting their RECEIVED, oldest first; `endAt` is null until the stream's END is written, and `sent` its
   * content bytes from then on; `credited`: the bytes of the last progress receipt that counted
   */
  readonly #awaiting: Array<{ requestId: number; endAt: number | null; sent: number; credited: number }> = [];
  #lastProgressAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(
    stream: Duplex,
    deadlineMs: number,
    onStalled: (requestId: number) => void,
    now = () => performance.now(),
  ) {
    this.#deadlineMs = deadlineMs;
    this.#onStalled = onStalled;
    this.#now = now;
    stream.on('drain', () => {
      this.#lastProgressAt = this.#now();
    });
    stream.once('close', () => this.stop());
  }

  /** Streams whose RECEIVED has not come (their END written or not). */
  get pending(): number {
    return this.#awaiting.length;
  }

  /** A stream answering `requestId` starts (its REPLY is about to be written). */
  expect(requestId: number): void {
    this.#awaiting.push({ requestId, endAt: null, sent: 0, credited: 0 });
  }

  /** The END of the oldest stream still being written was written, after `sent` content bytes: its deadline starts. */
  ended(sent: number): void {
    const stream = this.#awaiting.find((candidate) => candidate.endAt === null);
    if (!stream) return;
    stream.endAt = this.#now();
    stream.sent = sent;
    if (this.#timer === null && !this.#stopped) this.#arm(this.#deadlineMs);
  }

  /** When the client last reported progress [P-40], or the kernel last took bytes of the connection. */
  get lastProgressAt(): number {
    return this.#lastProgressAt;
  }

  /**
   * A progress receipt for `requestId` [P-40], saying `bytes` of the stream were read, when `handed` bytes of the
   * stream being written have been handed to the connection: `unknown` when no stream awaits it, `beyond` when it
   * claims more than was handed (a lie), else `taken`. It is progress (now) only when it says at least
   * PROGRESS_STEP_BYTES more than the last one that was, so a client that claims progress without reading holds its
   * stream for at most a drain deadline per step of what the kernel took, not for ever; nothing is delivered either
   * way.
   */
  progress(requestId: number, bytes: number, handed: number): 'unknown' | 'beyond' | 'taken' {
    const stream = this.#awaiting.find((candidate) => candidate.requestId === requestId);
    if (!stream) return 'unknown';
    if (bytes > (stream.endAt === null ? handed : stream.sent)) return 'beyond';
    if (bytes >= stream.credited + PROGRESS_STEP_BYTES) {
      stream.credited = bytes;
      this.#lastProgressAt = this.#now();
    }
    return 'taken';
  }

  /** A RECEIVED for `requestId`: true when a stream awaited it (the oldest such stream is delivered). */
  receipt(requestId: number): boolean {
    const first = this.#awaiting[0];
    if (first?.requestId === requestId) {
      this.#awaiting.shift();
      return true;
    }
    const index = this.#awaiting.findIndex((candidate) => candidate.requestId === requestId);
    if (index < 0) return false;
    this.#awaiting.splice(index, 1);
    return true;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#check(), Math.max(1, Math.ceil(delayMs)));
    this.#timer.unref();
  }

  #check(): void {
    this.#timer = null;
    const oldest = this.#awaiting.find((candidate) => candidate.endAt !== null);
    if (this.#stopped || !oldest || oldest.endAt === null) return;
    const dueAt = Math.max(oldest.endAt, this.#lastProgressAt) + this.#deadlineMs;
    const now = this.#now();
    if (now >= dueAt) {
      this.stop();
      this.#onStalled(oldest.requestId);
      return;
    }
    this.#arm(dueAt - now);
  }
}
