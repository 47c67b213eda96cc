/**
 * [P-63] Failed keys are throttled per address, so that keys cannot be guessed online. Pure: the caller passes the
 * time (a monotonic clock in milliseconds) and keeps nothing else.
 *
 * An address may fail `freeFailures` times; each failure after that blocks it for a delay that doubles, from
 * `baseDelayMs` up to `maxDelayMs`. While blocked, every HELLO with a key from it is refused at once with the time
 * left (the key is not even looked at, so a right key does not get through either). A success forgets the address;
 * so does a quiet `forgetAfterMs`. The table holds at most `maxAddresses` addresses: past that the one that failed
 * longest ago is forgotten, so a flood of addresses costs bounded memory.
 */

export interface ThrottleOptions {
  /** failures allowed before the first block */
  freeFailures: number;
  /** ms of the first block; each further failure doubles it */
  baseDelayMs: number;
  /** ms: the longest block */
  maxDelayMs: number;
  /** ms without a failure after which an address starts afresh */
  forgetAfterMs: number;
  /** addresses remembered at most */
  maxAddresses: number;
}

export const DEFAULT_THROTTLE: Readonly<ThrottleOptions> = Object.freeze({
  freeFailures: 5,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  forgetAfterMs: 15 * 60_000,
  maxAddresses: 10_000,
});

interface AddressRecord {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
}

export class CredentialThrottle {
  readonly #options: ThrottleOptions;
  /** in the order of their last failure (a Map keeps insertion order; a failure re-inserts) */
  readonly #addresses = new Map<string, AddressRecord>();

  constructor(options: Partial<ThrottleOptions> = {}) {
    this.#options = { ...DEFAULT_THROTTLE, ...options };
  }

  /** ms the address must still wait before it may present a key, or 0. */
  retryAfterMs(address: string, now: number): number {
    const record = this.#current(address, now);
    return record ? Math.max(0, Math.ceil(record.blockedUntil - now)) : 0;
  }

  /** A key from `address` was refused; returns the ms it must now wait (0: none yet). */
  failed(address: string, now: number): number {
    const record = this.#current(address, now) ?? { failures: 0, lastFailureAt: now, blockedUntil: 0 };
    record.failures += 1;
    record.lastFailureAt = now;
    const over = record.failures - this.#options.freeFailures;
    if (over > 0) {
      const delay = Math.min(this.#options.maxDelayMs, this.#options.baseDelayMs * 2 ** Math.min(over - 1, 30));
      record.blockedUntil = now + delay;
    }
    this.#addresses.delete(address);
    this.#addresses.set(address, record);
    if (this.#addresses.size > this.#options.maxAddresses) {
      const oldest = this.#addresses.keys().next().value;
      if (oldest !== undefined) this.#addresses.delete(oldest);
    }
    return Math.max(0, Math.ceil(record.blockedUntil - now));
  }

  /** A key from `address` was accepted: it starts afresh. */
  succeeded(address: string): void {
    this.#addresses.delete(address);
  }

  get size(): number {
    return this.#addresses.size;
  }

  #current(address: string, now: number): AddressRecord | undefined {
    const record = this.#addresses.get(address);
    if (record && now - record.lastFailureAt > this.#options.forgetAfterMs && now >= record.blockedUntil) {
      this.#addresses.delete(address);
      return undefined;
    }
    return record;
  }
}
