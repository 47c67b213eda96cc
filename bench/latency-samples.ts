/**
 * Request latencies of one run, in milliseconds: a preallocated, bounded store (no allocation per sample) and its
 * percentiles. Past `capacity` samples, further ones are counted but not kept (the report says how many).
 */

export interface LatencySummary {
  /** milliseconds */
  p50: number;
  p99: number;
  max: number;
  mean: number;
  samples: number;
  /** samples beyond the capacity, not kept */
  dropped: number;
}

export class LatencySamples {
  #values: Float64Array;
  #count = 0;
  #dropped = 0;
  #sum = 0;

  constructor(capacity: number) {
    this.#values = new Float64Array(capacity);
  }

  add(milliseconds: number): void {
    this.#sum += milliseconds;
    if (this.#count === this.#values.length) {
      this.#dropped++;
      return;
    }
    this.#values[this.#count++] = milliseconds;
  }

  /** The kept samples (a view: copy it before adding more). */
  values(): Float64Array {
    return this.#values.subarray(0, this.#count);
  }

  summary(): LatencySummary {
    return summarizeLatencies([this.values()], this.#dropped, this.#sum);
  }
}

/** Percentiles over several stores' samples (one per load thread). */
export function summarizeLatencies(parts: readonly Float64Array[], dropped = 0, sum?: number): LatencySummary {
  const total = parts.reduce((count, part) => count + part.length, 0);
  const all = new Float64Array(total);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  all.sort();
  let kept = 0;
  for (const value of all) kept += value;
  const samples = total + dropped;
  return {
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    max: total === 0 ? 0 : (all[total - 1] as number),
    mean: samples === 0 ? 0 : (sum ?? kept) / samples,
    samples,
    dropped,
  };
}

/** Nearest-rank percentile of sorted values; 0 when there are none. */
export function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank] as number;
}
