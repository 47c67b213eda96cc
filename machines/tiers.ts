/**
 * [P-20] Tiers: the session code decides the tier, the tier decides the quota and the right to read usage.
 * Pure data and functions; an operator's table comes from a JSON file through validateTierTable().
 */

/** [P-12] Session codes are integers from 100 to 999. */
export const MIN_CODE = 100;
export const MAX_CODE = 999;

/** One row of the table: codes `from`..`to` (both inclusive) get this tier. */
export interface TierRange {
  readonly from: number;
  readonly to: number;
  readonly tier: string;
  /** Image requests per session ([P-21]). */
  readonly quota: number;
  /** [P-22] */
  readonly canReadUsage: boolean;
  /**
   * [P-64] What a keyed identity's quota runs over: `session` (each session has the whole quota, as anonymous
   * sessions always do), or a fixed window of the UTC clock: `minute`, `hour`, `day`, `week` (from Monday 00:00).
   * Absent: `day`.
   */
  readonly period?: QuotaPeriod;
}

/** [P-64] */
export const QUOTA_PERIODS = ['session', 'minute', 'hour', 'day', 'week'] as const;
export type QuotaPeriod = (typeof QUOTA_PERIODS)[number];
export const DEFAULT_QUOTA_PERIOD: QuotaPeriod = 'day';

const PERIOD_MS: Record<Exclude<QuotaPeriod, 'session'>, number> = {
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 7 * 86_400_000,
};
/** The epoch (1970-01-01) was a Thursday: weeks start 4 days later, on Monday 1970-01-05 00:00 UTC. */
const WEEK_ORIGIN_MS = 4 * 86_400_000;

/**
 * [P-64] The fixed window of `period` that holds `at` (ms since the epoch): `start` inclusive, `end` exclusive, the
 * time the quota resets. null for `session`, which has no window.
 */
export function periodWindow(period: QuotaPeriod, at: number): { start: number; end: number } | null {
  if (period === 'session') return null;
  const length = PERIOD_MS[period];
  const origin = period === 'week' ? WEEK_ORIGIN_MS : 0;
  const start = Math.floor((at - origin) / length) * length + origin;
  return { start, end: start + length };
}

/** The first row of the table whose tier is `tier` (a tier may cover several ranges of codes). */
export function tierByName(table: TierTable, tier: string): TierRange | undefined {
  return table.find((row) => row.tier === tier);
}

/** Rows sorted by `from`, covering every code from MIN_CODE to MAX_CODE exactly once. */
export type TierTable = readonly TierRange[];

/** [P-20] The default table. */
export const DEFAULT_TIER_TABLE: TierTable = Object.freeze([
  Object.freeze({ from: 100, to: 399, tier: 'bronze', quota: 3, canReadUsage: false }),
  Object.freeze({ from: 400, to: 699, tier: 'silver', quota: 5, canReadUsage: false }),
  Object.freeze({ from: 700, to: 899, tier: 'gold', quota: 10, canReadUsage: false }),
  Object.freeze({ from: 900, to: 999, tier: 'platinum', quota: 20, canReadUsage: true }),
]);

/** The row of `table` that holds `code`; throws for a code outside 100..999 (a validated table covers all). */
export function tierForCode(code: number, table: TierTable): TierRange {
  const range = table.find((row) => code >= row.from && code <= row.to);
  if (range === undefined) {
    throw new RangeError(`no tier for session code ${code} (codes are integers from ${MIN_CODE} to ${MAX_CODE})`);
  }
  return range;
}

/**
 * Checks a table read from JSON: an array of `{ from, to, tier, quota, canReadUsage? }` (canReadUsage defaults to
 * false) whose ranges lie within 100..999, do not overlap and leave no code uncovered. Returns a sorted, frozen copy;
 * throws an Error naming the first problem.
 */
export function validateTierTable(value: unknown): TierTable {
  if (!Array.isArray(value) || value.length === 0) {
    throw new Error('tier table: expected a non-empty array of { from, to, tier, quota, canReadUsage }');
  }
  const rows = value.map((entry: unknown, index) => validateRow(entry, index));
  rows.sort((a, b) => a.from - b.from);
  let next = MIN_CODE;
  for (const row of rows) {
    if (row.from < next) {
      throw new Error(`tier table: ${describe(row)} overlaps the codes before ${next}`);
    }
    if (row.from > next) {
      throw new Error(`tier table: codes ${next}-${row.from - 1} have no tier`);
    }
    next = row.to + 1;
  }
  if (next <= MAX_CODE) {
    throw new Error(`tier table: codes ${next}-${MAX_CODE} have no tier`);
  }
  return Object.freeze(rows.map((row) => Object.freeze(row)));
}

/** [P-3] Longest tier name, in UTF-16 units: with it, a WELCOME is a few hundred bytes, far below 64 KiB. */
export const MAX_TIER_NAME_CHARS = 64;

function validateRow(entry: unknown, index: number): TierRange {
  const where = `tier table: entry ${index}`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new Error(`${where} is not an object`);
  }
  const { from, to, tier, quota, canReadUsage = false, period } = entry as Record<string, unknown>;
  if (!isCode(from) || !isCode(to)) {
    throw new Error(`${where}: from and to must be integers from ${MIN_CODE} to ${MAX_CODE}`);
  }
  if (from > to) {
    throw new Error(`${where}: from (${from}) is greater than to (${to})`);
  }
  // [P-3] The tier name travels in the WELCOME, which must stay well within the 64 KiB of a first frame.
  if (typeof tier !== 'string' || tier.length === 0 || tier.length > MAX_TIER_NAME_CHARS) {
    throw new Error(`${where}: tier must be a non-empty string of at most ${MAX_TIER_NAME_CHARS} characters`);
  }
  // [P-50] A quota is written as plain digits: an integer no greater than 2^53-1.
  if (typeof quota !== 'number' || !Number.isSafeInteger(quota) || quota < 0) {
    throw new Error(`${where}: quota must be a non-negative integer, at most ${Number.MAX_SAFE_INTEGER}`);
  }
  if (typeof canReadUsage !== 'boolean') {
    throw new Error(`${where}: canReadUsage must be a boolean`);
  }
  if (period !== undefined && !(QUOTA_PERIODS as readonly unknown[]).includes(period)) {
    throw new Error(`${where}: period must be one of ${QUOTA_PERIODS.join(', ')}`);
  }
  return { from, to, tier, quota, canReadUsage, ...(period === undefined ? {} : { period: period as QuotaPeriod }) };
}

function isCode(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= MIN_CODE && value <= MAX_CODE;
}

function describe(row: TierRange): string {
  return `${row.tier} (${row.from}-${row.to})`;
}
