/**
 * Connection numbers from one PostgreSQL sequence shared by every node, so that names `client-<n>` are unique across
 * the cluster and its restarts. Numbering happens in the accept path and must not wait: a node takes numbers in
 * blocks (one nextval of the sequence, whose INCREMENT is the block size, is a block), and fetches the next block in
 * the background once half of what it holds is used. Numbers are unique, not dense: a node's unused numbers are
 * never handed out (gaps are expected), and two nodes' numbers interleave by blocks, not by time.
 *
 * A fetch that fails (PostgreSQL out of reach) is tried again every REFILL_RETRY_MS while the node is short of
 * numbers, without waiting for a connection to ask: once PostgreSQL is back the node holds a block again within that
 * time, before its health check says up (at least a second after), so the first client it admits gets a number.
 */

import type { Pool } from './pool.ts';
import { CONNECTION_NUMBER_BLOCK } from './schema.ts';

/** ms between two tries of a block fetch that failed, while the node is short of numbers */
export const REFILL_RETRY_MS = 250;

/** Numbers are used one at a time; `next()` throws only when every block is used and no new one could be fetched. */
export class ConnectionNumbers {
  readonly #pool: Pool;
  readonly #onProblem: (error: Error) => void;
  /** starts of the blocks held, in order, and the next number of the first */
  readonly #blocks: number[] = [];
  #next = 0;
  #left = 0;
  #fetching: Promise<void> | null = null;
  /** the last fetch failed: the next failure is not told again (one problem per outage, not one per try) */
  #failing = false;
  #retry: NodeJS.Timeout | null = null;
  /** settles once the retry waiting on its timer has been made */
  #retried: Promise<void> | null = null;

  private constructor(pool: Pool, onProblem: (error: Error) => void) {
    this.#pool = pool;
    this.#onProblem = onProblem;
  }

  /** Takes the first blocks (two, so a burst of connections at start does not run dry). */
  static async open(pool: Pool, onProblem: (error: Error) => void = () => undefined): Promise<ConnectionNumbers> {
    const numbers = new ConnectionNumbers(pool, onProblem);
    await numbers.#fetch();
    await numbers.#fetch();
    return numbers;
  }

  /** The number the next connection will get (for the server-started event). */
  peek(): number {
    if (this.#left === 0) this.#advance();
    return this.#next;
  }

  next(): number {
    if (this.#left === 0) this.#advance();
    const number = this.#next++;
    this.#left--;
    if (this.#short()) this.#refill();
    return number;
  }

  /** Resolves once the block being fetched in the background (or retried), if any, has come (or its fetch failed). */
  refilled(): Promise<void> {
    return this.#fetching ?? this.#retried ?? Promise.resolve();
  }

  /** How many numbers the node holds now, without asking PostgreSQL. */
  held(): number {
    return this.#left + this.#blocks.length * CONNECTION_NUMBER_BLOCK;
  }

  #advance(): void {
    const start = this.#blocks.shift();
    if (start === undefined) {
      this.#refill();
      throw new Error('no connection numbers left: the history has been out of reach for a while');
    }
    this.#next = start;
    this.#left = CONNECTION_NUMBER_BLOCK;
  }

  /** Fewer than a block's numbers held: time to fetch the next. */
  #short(): boolean {
    return this.held() < CONNECTION_NUMBER_BLOCK;
  }

  #refill(): void {
    if (this.#fetching || this.#retry) return;
    this.#fetching = this.#fetch()
      .then(
        () => {
          this.#failing = false;
        },
        (error: Error) => {
          if (!this.#failing) this.#onProblem(error);
          this.#failing = true;
          this.#retryLater();
        },
      )
      .finally(() => {
        this.#fetching = null;
      });
  }

  /** Tries the failed fetch again on its own, unless the pool was ended (the node is stopping). */
  #retryLater(): void {
    if (this.#pool.ending) return;
    this.#retried = new Promise((resolve) => {
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.#retried = null;
        if (this.#short()) this.#refill();
        resolve(this.#fetching ?? undefined);
      }, REFILL_RETRY_MS);
      this.#retry.unref();
    });
  }

  async #fetch(): Promise<void> {
    const result = await this.#pool.query<{ start: number }>("SELECT nextval('connection_numbers') AS start");
    this.#blocks.push(Number(result.rows[0]?.start));
  }
}
