/**
 * The fuzzers' source of randomness: mulberry32, a tiny seeded PRNG, so that a run is replayed exactly from its
 * seed. Each case draws from its own generator, seeded from the run's seed and the case's index, so that one failing
 * case can be replayed alone (`FUZZ_SEED=<seed> FUZZ_CASE=<index>`), without the cases before it.
 */
import { randomInt } from 'node:crypto';
import { mulberry32 } from '../../src/tools/mulberry32.ts';

export class Random {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.#next();
  }

  /** An integer in [0, below). */
  below(below: number): number {
    return Math.floor(this.#next() * below);
  }

  /** An integer in [min, max], both included. */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.#next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.below(items.length)] as T;
  }

  /** An integer in [0, max], small values far more likely than large ones (sizes, counts, lengths). */
  size(max: number): number {
    const scale = this.pick([4, 16, 64, 512, max]);
    return this.below(Math.min(scale, max) + 1);
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let index = 0; index < length; index++) out[index] = this.below(256);
    return out;
  }

  /** Calls the chosen generator, each weighted by its number. */
  weighted<T>(choices: ReadonlyArray<readonly [weight: number, make: () => T]>): T {
    const total = choices.reduce((sum, [weight]) => sum + weight, 0);
    let roll = this.float() * total;
    for (const [weight, make] of choices) {
      roll -= weight;
      if (roll < 0) return make();
    }
    const last = choices[choices.length - 1];
    if (!last) throw new RangeError('no choices');
    return last[1]();
  }
}

/** The seed of case `index` of a run: a hash of both, so that neighbouring cases are unrelated. */
export function caseSeed(runSeed: number, index: number): number {
  let h = (runSeed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export interface FuzzSettings {
  /** the run's seed: FUZZ_SEED, or a fresh random one */
  seed: number;
  /** only this case (FUZZ_CASE), to replay one failure; null runs them all */
  onlyCase: number | null;
}

/** Reads FUZZ_SEED and FUZZ_CASE from `env`; a missing seed is drawn at random (and printed on failure). */
export function fuzzSettings(env: NodeJS.ProcessEnv = process.env): FuzzSettings {
  return {
    seed: env.FUZZ_SEED ? parseUnsigned(env.FUZZ_SEED, 'FUZZ_SEED') : randomInt(0, 2 ** 32 - 1),
    onlyCase: env.FUZZ_CASE ? parseUnsigned(env.FUZZ_CASE, 'FUZZ_CASE') : null,
  };
}

export function parseUnsigned(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${name} must be an integer from 0 to 4294967295, not '${text}'`);
  }
  return value;
}
