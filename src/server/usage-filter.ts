/**
 * [P-46] A `usage` request's filters as the export understands them: the session behind a client name, times in
 * milliseconds. Pure.
 */
import type { UsageFilter } from '../../db/usage-export.ts';
import type { UsageCommandRequest } from '../protocol/messages.ts';

/** Session names are `client-<n>`, n the session's number ([P-12]); any other name is no session (-1). */
const SESSION_NAME = /^client-([1-9][0-9]{0,15})$/;

export function usageFilterOf(request: UsageCommandRequest | undefined): UsageFilter | undefined {
  if (!request || (request.client === undefined && request.since === undefined && request.until === undefined)) {
    return undefined;
  }
  const filter: UsageFilter = {};
  if (request.client !== undefined) {
    const number = SESSION_NAME.exec(request.client)?.[1];
    filter.session = number === undefined ? -1 : Number(number);
  }
  if (request.since !== undefined) filter.since = Date.parse(request.since);
  if (request.until !== undefined) filter.until = Date.parse(request.until);
  return filter;
}
