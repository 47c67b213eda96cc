/**
 * [P-49] Refusals are recorded in aggregate. A refusal whose event is the same as the session's previous row (the same
 * refusal again) is recorded as an `answer-repeated`, which adds one to that row's `repeats` instead of appending a
 * row; a `rate-limited` refusal always is, adding one to the `rateLimited` of the session's previous row, whatever it
 * is (so a flood alternating a refusal and rate-limited answers still makes no new rows). Pure: the glue keeps the key
 * of the session's last row.
 */
import type { AnswerRepeated, NewEvent } from '../../db/events.ts';

/**
 * What makes two refusals the same, or null for an event that is never aggregated (anything but a refusal that is
 * not fatal: each not-modified keeps its row, [P-36]).
 */
export function repeatKey(event: NewEvent): string | null {
  if (event.type !== 'request-refused') return null;
  const { code, command, image, imageLength, reason, suspicious } = event.data;
  return JSON.stringify([code, command, image ?? null, imageLength ?? null, reason, suspicious ?? null]);
}

/**
 * The events to record for an answer, given the key of the session's previous row, and the key of the session's
 * last row once they are recorded.
 */
export function aggregateRepeat(
  events: readonly NewEvent[],
  previousKey: string | null,
): { events: readonly NewEvent[]; key: string | null } {
  const only = events.length === 1 ? events[0] : undefined;
  if (!only || only.session === null) return { events, key: null };
  const requestId = 'requestId' in only.data ? (only.data.requestId as number | null) : null;
  const counted = (count: AnswerRepeated['data']['count']): AnswerRepeated => ({
    type: 'answer-repeated',
    session: only.session as number,
    data: { requestId, count },
  });
  // A rate-limited refusal is counted on the row before it, which stays the session's last row.
  if (only.type === 'request-refused' && only.data.code === 'rate-limited') {
    return { events: [counted('rateLimited')], key: previousKey };
  }
  const key = repeatKey(only);
  if (key === null || key !== previousKey) return { events, key };
  return { events: [counted('repeats')], key };
}
