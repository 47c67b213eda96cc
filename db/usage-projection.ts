/**
 * The usage document of [P-32] as a pure, streaming projection of events: it reads each input once, in order, holds
 * one client at a time, and yields the document as pieces of JSON text that join into one object.
 */

import type { UsageClient, UsageDocument, UsageRejection, UsageRequest } from '../src/protocol/usage-document.ts';
import type { StoredEvent } from './events.ts';
import { isoTime as iso } from './iso-time.ts';

export type { UsageClient, UsageDocument, UsageRejection, UsageRequest };

export interface UsageInput {
  /**
   * Every event that has a session, except `connection-rejected`, grouped by session with the sessions in the order
   * of their numbers, each session's events in position order.
   */
  sessions: Iterable<StoredEvent>;
  /** the `connection-rejected` events, in the order of their session numbers */
  rejected: Iterable<StoredEvent>;
  /** milliseconds since the epoch */
  generatedAt: number;
  /** [P-46] only part of the history (default: all of it) */
  filter?: UsageFilter;
}

/**
 * [P-46] What a `usage` request asks for. A client is in the document when its session is `session` (if given) and it
 * was admitted at or after `since` and before `until` (if given); a rejection when no `session` is given and it
 * happened in that range. Times in milliseconds since the epoch.
 */
export interface UsageFilter {
  session?: number;
  /** [P-67] only the sessions of this registered client (a keyed client reading its own history) */
  identity?: string;
  since?: number;
  until?: number;
}

/** [P-46] [P-67] Whether a client admitted at `at` in session `session`, of `identity` (if keyed), is selected. */
export function selectsClient(
  filter: UsageFilter | undefined,
  session: number | null,
  at: number,
  identity?: string,
): boolean {
  if (!filter) return true;
  if (filter.session !== undefined && session !== filter.session) return false;
  if (filter.identity !== undefined && identity !== filter.identity) return false;
  return inRange(filter, at);
}

/** [P-46] [P-67] Whether the document holds rejections at all: not when one client, or one identity, is asked for. */
export function wantsRejections(filter: UsageFilter | undefined): boolean {
  return filter?.session === undefined && filter?.identity === undefined;
}

/** [P-46] Whether a rejection at `at` is selected: never when one client is asked for. */
export function selectsRejection(filter: UsageFilter | undefined, at: number): boolean {
  if (!filter) return true;
  return wantsRejections(filter) && inRange(filter, at);
}

function inRange(filter: UsageFilter, at: number): boolean {
  return (filter.since === undefined || at >= filter.since) && (filter.until === undefined || at < filter.until);
}

/**
 * The version of a client's entry as this projection writes it. Entries kept by the usage cache (usage-cache.ts) are
 * rebuilt when it changes: add one whenever what toClient() writes for the same events changes (a field, an outcome).
 */
export const CLIENT_ENTRY_VERSION = 1;

/** Pieces are gathered up to about this many characters, so a history of small sessions is not a flood of tiny writes. */
const PIECE_CHARS = 64 * 1024;

export function* usageJsonChunks(input: UsageInput): Generator<string, void, undefined> {
  const pieces = new PieceBuffer();
  pieces.add(`{"generatedAt":${JSON.stringify(iso(input.generatedAt))},"clients":[`);
  yield* pieces.addList(clients(input.sessions, input.filter));
  pieces.add('],"rejected":[');
  yield* pieces.addList(rejections(input.rejected, input.filter));
  pieces.add(']}');
  yield pieces.take();
}

/** One client of the document, with what selects and orders it: its session number and admission time. */
export interface ClientEntry {
  session: number;
  /** ms since the epoch */
  connectedAt: number;
  client: UsageClient;
}

/**
 * [P-32] The clients of the document, each with its session and admission time, from events grouped by session in
 * the order of their numbers (as `UsageInput.sessions`). Sessions never admitted are left out.
 */
export function* clientEntries(events: Iterable<StoredEvent>): Generator<ClientEntry, void, undefined> {
  let draft: ClientDraft | null = null;
  let session: number | null = null;
  const entry = (finished: ClientDraft | null): ClientEntry | null => {
    const client = finished && toClient(finished);
    if (!client || !finished?.admitted || session === null) return null;
    return { session, connectedAt: finished.admitted.at, client };
  };
  for (const event of events) {
    if (draft === null || event.session !== session) {
      const finished = entry(draft);
      if (finished) yield finished;
      draft = emptyDraft();
      session = event.session;
    }
    addToDraft(draft, event);
  }
  const last = entry(draft);
  if (last) yield last;
}

/** [P-32] The document from its clients already in JSON, in order, and the rejection events (filtered here). */
export function* usageJsonChunksFromParts(input: {
  clientsJson: Iterable<string>;
  rejected: Iterable<StoredEvent>;
  generatedAt: number;
  filter?: UsageFilter;
}): Generator<string, void, undefined> {
  const pieces = new PieceBuffer();
  pieces.add(`{"generatedAt":${JSON.stringify(iso(input.generatedAt))},"clients":[`);
  yield* pieces.addJsonList(input.clientsJson);
  pieces.add('],"rejected":[');
  yield* pieces.addList(rejections(input.rejected, input.filter));
  pieces.add(']}');
  yield pieces.take();
}

/** The whole document as an object: for tests and small histories. */
export function projectUsage(input: UsageInput): UsageDocument {
  return JSON.parse(Array.from(usageJsonChunks(input)).join('')) as UsageDocument;
}

/**
 * The document's text gathered into pieces of about PIECE_CHARS: raw text (`add`) and the elements of the JSON array
 * it opens (`item`, which puts the commas). The SQLite export drives it from generators, the PostgreSQL export
 * (db/postgres/usage-export.ts) from an async one, taking a piece whenever one is `full`.
 */
export class PieceBuffer {
  #parts: string[] = [];
  #chars = 0;
  /** what goes before the next element: nothing after raw text, a comma after an element */
  #separator = '';

  add(text: string): void {
    this.#parts.push(text);
    this.#chars += text.length;
    this.#separator = '';
  }

  /** One element, already in JSON, of the array the last raw text opened. */
  item(json: string): void {
    this.#parts.push(this.#separator + json);
    this.#chars += json.length + this.#separator.length;
    this.#separator = ',';
  }

  /** Enough text has gathered for a piece. */
  get full(): boolean {
    return this.#chars >= PIECE_CHARS;
  }

  /** Adds the items as the elements of a JSON array, yielding a piece whenever enough text has gathered. */
  *addList(items: Iterable<unknown>): Generator<string, void, undefined> {
    yield* this.addJsonList(jsonOf(items));
  }

  /** The same, with items already in JSON. */
  *addJsonList(items: Iterable<string>): Generator<string, void, undefined> {
    for (const item of items) {
      this.item(item);
      if (this.full) yield this.take();
    }
  }

  take(): string {
    const piece = this.#parts.join('');
    this.#parts = [];
    this.#chars = 0;
    return piece;
  }
}

interface ClientDraft {
  admitted: { at: number; name: string; code: number; tier: string; quota: number; identity?: string } | null;
  closed: { at: number; reason: string } | null;
  used: number;
  requests: UsageRequest[];
}

/** One client per run of events with the same session; a session never admitted is not a client. */
function* clients(events: Iterable<StoredEvent>, filter?: UsageFilter): Generator<UsageClient, void, undefined> {
  for (const entry of clientEntries(events)) {
    if (selectsClient(filter, entry.session, entry.connectedAt, entry.client.identity)) yield entry.client;
  }
}

function* jsonOf(items: Iterable<unknown>): Generator<string, void, undefined> {
  for (const item of items) yield JSON.stringify(item);
}

function emptyDraft(): ClientDraft {
  return { admitted: null, closed: null, used: 0, requests: [] };
}

function addToDraft(draft: ClientDraft, event: StoredEvent): void {
  switch (event.type) {
    case 'session-admitted':
      draft.admitted ??= {
        at: event.at,
        name: event.data.name,
        code: event.data.code,
        tier: event.data.tier,
        quota: event.data.quota,
        ...(event.data.identity === undefined ? {} : { identity: event.data.identity }),
      };
      return;
    case 'session-closed':
      draft.closed ??= { at: event.at, reason: event.data.reason };
      return;
    case 'image-served':
      draft.used++;
      draft.requests.push({ image: event.data.image, at: iso(event.at), outcome: 'served', bytes: event.data.bytes });
      return;
    case 'image-not-modified':
      draft.requests.push({ image: event.data.image, at: iso(event.at), outcome: 'not-modified' });
      return;
    case 'request-refused':
      // Other refusals (a bad request, a forbidden usage) are not image requests.
      if (event.data.code === 'image-not-found' && event.data.image !== undefined) {
        const repeats = event.data.repeats ? { repeats: event.data.repeats } : {}; // [P-49]
        draft.requests.push({ image: event.data.image, at: iso(event.at), outcome: 'not-found', ...repeats });
      }
      return;
    case 'quota-exhausted':
      draft.requests.push({ image: event.data.image, at: iso(event.at), outcome: 'refused' });
      return;
    case 'transfer-incomplete':
      markIncomplete(draft, event.data);
      return;
    default:
      return;
  }
}

/**
 * [P-42] The transfer of the session's last served image stopped before its END: that request's outcome is
 * `incomplete`, with the bytes sent and why, and it does not count in `quota.used`. A transfer ends its session, so
 * it is the last image served.
 */
function markIncomplete(draft: ClientDraft, data: Extract<StoredEvent, { type: 'transfer-incomplete' }>['data']): void {
  for (let index = draft.requests.length - 1; index >= 0; index--) {
    const request = draft.requests[index] as UsageRequest;
    if (request.outcome !== 'served') continue;
    if (request.image !== data.image) return;
    draft.requests[index] = {
      image: request.image,
      at: request.at,
      outcome: 'incomplete',
      bytes: data.bytes,
      bytesSent: data.bytesSent,
      reason: data.reason,
    };
    draft.used--;
    return;
  }
}

function toClient(draft: ClientDraft): UsageClient | null {
  const { admitted, closed } = draft;
  if (admitted === null) return null;
  return {
    name: admitted.name,
    code: admitted.code,
    tier: admitted.tier,
    ...(admitted.identity === undefined ? {} : { identity: admitted.identity }),
    connectedAt: iso(admitted.at),
    disconnectedAt: closed ? iso(closed.at) : null,
    closeReason: closed ? closed.reason : null,
    quota: { limit: admitted.quota, used: draft.used },
    requests: draft.requests,
  };
}

/** [P-32] The rejections of the document, from `connection-rejected` events (filtered here). */
export function* rejections(
  events: Iterable<StoredEvent>,
  filter?: UsageFilter,
): Generator<UsageRejection, void, undefined> {
  for (const event of events) {
    if (event.type !== 'connection-rejected' || !selectsRejection(filter, event.at)) continue;
    yield { at: iso(event.at), reason: event.data.reason, occupancy: event.data.occupancy };
  }
}
