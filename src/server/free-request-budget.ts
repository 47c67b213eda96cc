/**
 * [P-48] The budget of requests that cost no quota, per session: a token bucket. Pure: the state is a value, the
 * clock is a parameter, and the glue keeps one state per connection and asks `spendFreeRequest` before it hands a
 * free request to the session machine.
 *
 * A bucket holds up to `burst` tokens and gains `perSecond` tokens a second; a free request takes one. With none
 * left the request is over the budget, and the answer says when the next token comes (`retryAfterMs`).
 */

export interface FreeRequestBudgetOptions {
  /** tokens the bucket holds when full: free requests a session may make at once */
  burst: number;
  /** tokens gained per second: free requests a session may make per second, sustained */
  perSecond: number;
}

export interface BudgetState {
  /** tokens in the bucket, fractional */
  tokens: number;
  /** when `tokens` was last brought up to date, ms on a monotonic clock */
  at: number;
}

export type BudgetDecision =
  | { allowed: true; state: BudgetState }
  | { allowed: false; state: BudgetState; retryAfterMs: number };

/** A full bucket at `now`: a new session may make `burst` free requests at once. */
export function fullBudget(options: FreeRequestBudgetOptions, now: number): BudgetState {
  return { tokens: options.burst, at: now };
}

/**
 * [P-48] Takes one token for a free request made at `now` (ms, monotonic), or says how long until one is there. A
 * refused request takes nothing, so a client that waits `retryAfterMs` is served; one that keeps asking meanwhile
 * stays refused.
 */
export function spendFreeRequest(state: BudgetState, options: FreeRequestBudgetOptions, now: number): BudgetDecision {
  const elapsedMs = Math.max(0, now - state.at);
  const tokens = Math.min(options.burst, state.tokens + (elapsedMs * options.perSecond) / 1000);
  if (tokens >= 1) return { allowed: true, state: { tokens: tokens - 1, at: now } };
  const retryAfterMs = Math.max(1, Math.ceil(((1 - tokens) * 1000) / options.perSecond));
  return { allowed: false, state: { tokens, at: now }, retryAfterMs };
}

/**
 * [P-48] Whether a parsed request costs no quota, so draws on the budget: everything but a `get` answered with the
 * image's bytes (the quota bounds those) and `exit` (it ends the session).
 */
export function costsNoQuota(command: string, imageExists: boolean, imageUnchanged: boolean): boolean {
  if (command === 'exit') return false;
  return !(command === 'get' && imageExists && !imageUnchanged);
}
