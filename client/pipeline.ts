/**
 * Pipelining [P-16] [P-75]: many requests of one session kept in flight, instead of one round trip each. The
 * requests go out in the order of the items and their answers come back in that order; the server reads at most 16
 * unanswered requests of a connection, so that is the most worth keeping in flight.
 */
import { ConnectionClosedError, ServerError } from '../src/protocol/index.ts';

/** [P-16] The most requests a client may send before reading their answers. */
export const MAX_IN_FLIGHT = 16;

/**
 * Runs `send(item, prepared)` for each item in order, with at most `inFlight` of their promises unsettled at once.
 * `prepare(item)` is the local work before (such as checking the file held): every item's starts at once, so that
 * none of it waits between two requests. `send` must send its request before it returns (before its first await),
 * so that requests leave in the order of `items`. Resolves with every item's outcome, in order, once all settled.
 */
export async function pipelined<T, P, R>(
  items: readonly T[],
  inFlight: number,
  prepare: (item: T) => Promise<P>,
  send: (item: T, prepared: P) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const outcomes: PromiseSettledResult<R>[] = new Array(items.length);
  const unsettled = new Set<Promise<void>>();
  const prepared = items.map((item) => prepare(item));
  for (const promise of prepared) promise.catch(() => {}); // each is awaited below, in turn
  for (const [index, item] of items.entries()) {
    while (unsettled.size >= Math.max(1, inFlight)) await Promise.race(unsettled);
    let answer: Promise<R>;
    try {
      answer = send(item, await (prepared[index] as Promise<P>));
    } catch (error) {
      answer = Promise.reject(error);
    }
    const settled: Promise<void> = answer.then(
      (value) => {
        outcomes[index] = { status: 'fulfilled', value };
        unsettled.delete(settled);
      },
      (reason: unknown) => {
        outcomes[index] = { status: 'rejected', reason };
        unsettled.delete(settled);
      },
    );
    unsettled.add(settled);
  }
  await Promise.all(unsettled);
  return outcomes;
}

/**
 * [P-55] For each outcome, in order: whether it is a request the end of the session left undone. After a failure
 * that ends the session (a fatal refusal such as quota-exhausted, or the connection lost), the requests still
 * unanswered, and those not sent yet, fail with the connection's end: they were not carried out. The failure that
 * ended it is not one of them (it is reported as it is), nor is any failure of a request's own. A fatal ERROR that
 * answers no request ([P-26], `id` null: history-unavailable) fails every request still unanswered with the server's
 * words: the first is reported with them, the ones after it are left undone.
 */
export function leftUndone(outcomes: readonly PromiseSettledResult<unknown>[]): boolean[] {
  let ended = false;
  return outcomes.map((outcome) => {
    if (outcome.status === 'fulfilled') return false;
    const error: unknown = outcome.reason;
    const endOfSession =
      error instanceof ConnectionClosedError || (error instanceof ServerError && error.requestId === null);
    if (ended && endOfSession) return true;
    if (error instanceof ConnectionClosedError || (error instanceof ServerError && error.fatal)) ended = true;
    return false;
  });
}
