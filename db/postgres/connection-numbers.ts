/**
 * Connection numbers from one PostgreSQL sequence shared by every node, so that names `client-<n>` are unique across
 * the cluster and its restarts. Numbering happens in the accept path and must not wait: a node takes numbers in
 * blocks (one nextval of the sequence, whose INCREMENT is the block size, is a block), and fetches the next block in
 * the background once half of what it holds is used. Numbers are unique, not dense: a node's unused numbers are
 * never handed out (gaps are expected), and two nodes' numbers interleave by blocks, not by time.
 */

import type { Pool } from './pool.ts';
import { CONNECTION_NUMBER_BLOCK } from './schema.ts';

/** Numbers are used one at a time; `next()` throws only when every block is used and no new one could be fetched. */
export class ConnectionNumbers {
  readonly #pool: Pool;
  readonly #onProblem: (error: Error) => void;
  /** starts of the blocks held, in order, and the next number of the first */
  readonly #blocks: number[] = [];
  #next = 0;
  #left = 0;
  #fetching: Promise<void> | null = null;

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
    if (this.#left + this.#blocks.length * CONNECTION_NUMBER_BLOCK < CONNECTION_NUMBER_BLOCK) this.#refill();
    return number;
  }

  /** Resolves once the block being fetched in the background, if any, has come (or its fetch failed). */
  refilled(): Promise<void> {
    return this.#fetching ?? Promise.resolve();
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

  #refill(): void {
    this.#fetching ??= this.#fetch()
      .catch((error: Error) => this.#onProblem(error))
      .finally(() => {
        this.#fetching = null;
      });
  }

  async #fetch(): Promise<void> {
    const result = await this.#pool.query<{ start: number }>("SELECT nextval('connection_numbers') AS start");
    this.#blocks.push(Number(result.rows[0]?.start));
  }
}
