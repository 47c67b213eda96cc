/**
 * [P-49] Identical free answers in a row are recorded in aggregate: an answer whose event is the same as the session's
 * previous row (the same refusal again) is recorded as an `answer-repeated`, which adds one to that
 * row's `repeats` instead of appending a row. Pure: the glue keeps the key of the session's last row.
 */
import type { AnswerRepeated, NewEvent } from '../../db/events.ts';

/**
 * What makes two refusals the same, or null for an event that is never aggregated (anything but a refusal that is
 * not fatal: each not-modified keeps its row, [P-36]). `rate-limited` refusals are all the same, whatever was asked.
 */
export function repeatKey(event: NewEvent): string | null {
  if (event.type === 'request-refused') {
    const { code, command, image, imageLength, reason, suspicious } = event.data;
    if (code === 'rate-limited') return code;
    return JSON.stringify(['refused', code, command, image ?? null, imageLength ?? null, reason, suspicious ?? null]);
  }
  return null;
}

/** The events to record for an answer, given the key of the session's previous row, and the key of the new last row. */
export function aggregateRepeat(
  events: readonly NewEvent[],
  previousKey: string | null,
): { events: readonly NewEvent[]; key: string | null } {
  const only = events.length === 1 ? events[0] : undefined;
  const key = only ? repeatKey(only) : null;
  if (!only || key === null || key !== previousKey || only.session === null) return { events, key };
  const requestId = 'requestId' in only.data ? (only.data.requestId as number | null) : null;
  const repeated: AnswerRepeated = { type: 'answer-repeated', session: only.session, data: { requestId } };
  return { events: [repeated], key };
}
