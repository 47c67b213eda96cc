/**
 * [P-32] The usage document: the JSON a `usage` stream carries. The server builds it (db/usage-projection.ts); a
 * client reads it with parseUsageDocument, leniently: fields a later server adds are ignored [P-6], a missing field
 * reads as empty, and an outcome this version does not know is kept as it came.
 */
import type { Occupancy } from './messages.ts';

export type UsageOutcome = 'served' | 'not-modified' | 'not-found' | 'refused' | 'incomplete';

export interface UsageRequest {
  image: string;
  /** ISO 8601 */
  at: string;
  /** `not-modified` is a conditional get answered without the bytes [P-35] */
  outcome: UsageOutcome | (string & {});
  /** only for `served` and `incomplete` (the bytes announced) */
  bytes?: number;
  /** [P-42] only for `incomplete`: the image bytes sent before the transfer stopped, and why it stopped */
  bytesSent?: number;
  reason?: string;
  /** [P-49] only for `not-found`: how many identical requests followed this one in a row, answered the same */
  repeats?: number;
}

export interface UsageClient {
  name: string;
  code: number;
  tier: string;
  /** [P-67] the registered client whose key the session presented; absent for an anonymous session */
  identity?: string;
  connectedAt: string;
  /** null while the session is open */
  disconnectedAt: string | null;
  closeReason: string | null;
  quota: { limit: number; used: number };
  requests: UsageRequest[];
}

export interface UsageRejection {
  at: string;
  reason: string;
  occupancy: Occupancy;
}

export interface UsageDocument {
  generatedAt: string;
  clients: UsageClient[];
  rejected: UsageRejection[];
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function count(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function parseRequestEntry(value: unknown): UsageRequest {
  const request = record(value);
  const bytes = typeof request.bytes === 'number' ? { bytes: request.bytes } : {};
  const bytesSent = typeof request.bytesSent === 'number' ? { bytesSent: request.bytesSent } : {};
  const reason = typeof request.reason === 'string' ? { reason: request.reason } : {};
  const repeats = typeof request.repeats === 'number' ? { repeats: request.repeats } : {}; // [P-49]
  return {
    image: text(request.image),
    at: text(request.at),
    outcome: text(request.outcome),
    ...bytes,
    ...bytesSent,
    ...reason,
    ...repeats,
  };
}

function parseClient(value: unknown): UsageClient {
  const client = record(value);
  const quota = record(client.quota);
  return {
    name: text(client.name),
    code: count(client.code),
    tier: text(client.tier),
    connectedAt: text(client.connectedAt),
    disconnectedAt: typeof client.disconnectedAt === 'string' ? client.disconnectedAt : null,
    closeReason: typeof client.closeReason === 'string' ? client.closeReason : null,
    quota: { limit: count(quota.limit), used: count(quota.used) },
    requests: list(client.requests).map(parseRequestEntry),
  };
}

function parseRejection(value: unknown): UsageRejection {
  const rejection = record(value);
  const occupancy = record(rejection.occupancy);
  return {
    at: text(rejection.at),
    reason: text(rejection.reason),
    occupancy: { open: count(occupancy.open), capacity: count(occupancy.capacity) },
  };
}

/** Reads a parsed usage document; throws only when it is not an object with a `clients` array. */
export function parseUsageDocument(parsed: unknown): UsageDocument {
  const body = record(parsed);
  if (!Array.isArray(body.clients)) throw new Error('the usage document has no clients list');
  return {
    generatedAt: text(body.generatedAt),
    clients: body.clients.map(parseClient),
    rejected: list(body.rejected).map(parseRejection),
  };
}
