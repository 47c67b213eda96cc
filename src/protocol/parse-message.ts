/**
 * Pure validators that turn a frame body into a typed message, or throw a typed protocol error (src/errors.ts).
 *
 * Every parser reads only the fields it knows and ignores the others ([P-6]); the objects it returns hold only known
 * fields. `parseJsonBody` comes first ([P-5]); then the server uses `parseHello` and `parseRequest`, the client
 * `parseWelcome`, `parseReject`, `parseReply`, `parseErrorBody`, `parseNotice` and `parseStreamEnd`. The client-side
 * parsers throw `MalformedMessageError` for any violation.
 */
import { BadHelloError, BadRequestError, MalformedMessageError, UnknownCommandError } from '../errors.ts';
import {
  COMMANDS,
  type Command,
  ERROR_CODES,
  type ErrorCode,
  type Hello,
  type ImageInfo,
  type ListRequest,
  type Quota,
  type ReceivedErrorBody,
  type ReceivedNotice,
  type ReceivedReject,
  type Reply,
  type Request,
  type ServerLimits,
  type SessionIdentity,
  type StreamEnd,
  type UsageCommandRequest,
  type Welcome,
} from './messages.ts';

/** A parsed JSON object body. */
export type JsonObject = Record<string, unknown>;

/** [P-8] Longest `client` a HELLO may carry, in characters (Unicode code points). */
export const HELLO_CLIENT_MAX_CHARS = 100;
/** [P-15] Largest request id (u32). */
export const MAX_REQUEST_ID = 0xffffffff;

/** Fatal on invalid UTF-8; keeps a byte order mark in the text so that JSON.parse refuses it ([P-5]). */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** [P-51] C0 controls, DEL and C1 controls. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this looks for
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
/** A UTF-16 surrogate that is not half of a pair: not a Unicode character, and not encodable in UTF-8. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// ---------------------------------------------------------------------------------------------------------------
// Bodies

/**
 * [P-5] A JSON body: one JSON object encoded as UTF-8 without a byte order mark. Throws `MalformedMessageError` when
 * the bytes are not valid UTF-8, not JSON, not an object (arrays and null are not objects), or hold an object with
 * two members of the same name ([P-50]).
 */
export function parseJsonBody(body: Uint8Array): JsonObject {
  const text = decodeUtf8(body);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new MalformedMessageError('the body is not valid JSON', { cause });
  }
  if (!isJsonObject(value)) throw new MalformedMessageError(`the body is JSON ${describe(value)}, not an object`);
  const duplicate = duplicateMemberName(text);
  if (duplicate !== null) {
    throw new MalformedMessageError(`the body names the member ${describe(duplicate)} twice in one object`);
  }
  return value;
}

/**
 * [P-40] A RECEIVED's body, read as `parseJsonBody` reads it. The usual one, `{"id":N}` and nothing else (what
 * `JSON.stringify` writes), is read straight from its bytes, without decoding text or scanning for duplicate names:
 * a receipt follows nearly every get. Any other body goes through `parseJsonBody`.
 */
export function parseReceipt(body: Uint8Array): JsonObject {
  const at = plainIdOf(body);
  if (at === null || at.end !== body.length - 1 || body[at.end] !== 0x7d /* } */) return parseJsonBody(body);
  return { id: at.id };
}

/**
 * [P-5] [P-15] A REQUEST's body, read as `parseRequest(parseJsonBody(body))` reads it. The usual get, exactly
 * `{"id":N,"command":"get","image":"NAME"}` (what `JSON.stringify` writes) with a name that needs no escape, is read
 * straight from its bytes: JSON.parse and the scan for duplicate names ([P-50]) are for every other body.
 */
export function parseRequestBody(body: Uint8Array): Request {
  return plainGet(body) ?? parseRequest(parseJsonBody(body));
}

const PLAIN_ID_PREFIX = Buffer.from('{"id":', 'latin1');
/** Digits of an id read straight from the bytes: up to 10, as a u32 has ([P-15]); longer ones go the general way. */
const PLAIN_ID_MAX_DIGITS = 10;
const PLAIN_GET_MEMBERS = Buffer.from(',"command":"get","image":"', 'latin1');

/**
 * The id of a body that starts `{"id":` and digits (no leading zero, as JSON has none), and the index after its
 * digits; else null.
 */
function plainIdOf(body: Uint8Array): { id: number; end: number } | null {
  const first = PLAIN_ID_PREFIX.length;
  if (body.length <= first) return null;
  for (let index = 0; index < first; index++) if (body[index] !== PLAIN_ID_PREFIX[index]) return null;
  let end = first;
  let id = 0;
  while (end < body.length && end - first < PLAIN_ID_MAX_DIGITS) {
    const digit = (body[end] ?? 0) - 0x30;
    if (digit < 0 || digit > 9) break;
    id = id * 10 + digit;
    end++;
  }
  const digits = end - first;
  if (digits === 0 || (digits > 1 && body[first] === 0x30) /* 0 */) return null;
  return { id, end };
}

/** A get whose body is exactly `{"id":N,"command":"get","image":"NAME"}`, NAME with no escape; else null. */
function plainGet(body: Uint8Array): Request | null {
  const at = plainIdOf(body);
  if (at === null || at.id > MAX_REQUEST_ID) return null;
  const nameStart = at.end + PLAIN_GET_MEMBERS.length;
  const nameEnd = body.length - 2;
  if (nameEnd < nameStart || body[nameEnd] !== 0x22 /* " */ || body[nameEnd + 1] !== 0x7d /* } */) return null;
  for (let index = 0; index < PLAIN_GET_MEMBERS.length; index++) {
    if (body[at.end + index] !== PLAIN_GET_MEMBERS[index]) return null;
  }
  for (let index = nameStart; index < nameEnd; index++) {
    const byte = body[index] ?? 0;
    // A control character is not JSON; a quote or a backslash would need the general reading.
    if (byte < 0x20 || byte === 0x22 /* " */ || byte === 0x5c /* \ */) return null;
  }
  try {
    return { id: at.id, command: 'get', image: utf8.decode(body.subarray(nameStart, nameEnd)) };
  } catch {
    return null; // not UTF-8: the general reading says so
  }
}

/**
 * [P-50] The first member name that occurs twice in one object of `text`, or null. `text` is valid JSON (JSON.parse
 * took it), so a scan that follows strings, objects and arrays is enough; names are compared after unescaping
 * (`"a"` and `"\u0061"` are the same name). JSON.parse would keep the last of the two silently.
 */
function duplicateMemberName(text: string): string | null {
  // One entry per open object or array: the names seen so far in an object (a few: an array beats a Set), null
  // for an array.
  const open: Array<string[] | null> = [];
  let expectName = false;
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index);
    if (char === 0x22 /* " */) {
      const start = index + 1;
      index = closingQuote(text, start);
      const names = open.at(-1);
      if (expectName && names) {
        const raw = text.slice(start, index);
        const name = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (names.includes(name)) return name;
        names.push(name);
        expectName = false;
      }
    } else if (char === 0x7b /* { */) {
      open.push([]);
      expectName = true;
    } else if (char === 0x5b /* [ */) {
      open.push(null);
      expectName = false;
    } else if (char === 0x7d /* } */ || char === 0x5d /* ] */) {
      open.pop();
    } else if (char === 0x2c /* , */) {
      expectName = open.at(-1) != null;
    }
  }
  return null;
}

/** The index of the quote that closes the JSON string whose text starts at `start`: one not escaped by a backslash. */
function closingQuote(text: string, start: number): number {
  let quote = text.indexOf('"', start);
  for (;;) {
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c /* \ */) backslashes++;
    if (backslashes % 2 === 0) return quote;
    quote = text.indexOf('"', quote + 1);
  }
}

function decodeUtf8(body: Uint8Array): string {
  try {
    return utf8.decode(body);
  } catch (cause) {
    throw new MalformedMessageError('the body is not valid UTF-8', { cause });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Server side: HELLO and REQUEST

/**
 * [P-8] [P-11] A HELLO, else `BadHelloError`:
 * - `versions` must be a non-empty array of positive integers;
 * - `client`, when present, must be a well-formed string of at most 100 code points with no control character
 *   ([P-51]: it goes to the operator's log and history, where a control character could forge or hide a line);
 * - `credential` is not copied, so it cannot reach a log: the server's access check reads it from the body itself
 *   ([P-60]), and it goes nowhere else.
 */
export function parseHello(obj: JsonObject): Hello {
  const versions = field(obj, 'versions');
  if (versions === undefined) throw new BadHelloError('the HELLO has no versions');
  if (!isArray(versions) || versions.length === 0) {
    throw new BadHelloError('versions must be a non-empty array of positive integers');
  }
  if (!versions.every(isPositiveInteger)) throw new BadHelloError('versions must hold positive integers only');
  const hello: Hello = { versions: [...versions] };
  const client = field(obj, 'client');
  if (client !== undefined) hello.client = helloClient(client);
  return hello;
}

/** [P-8] [P-51] The HELLO's `client`, or `BadHelloError`. */
function helloClient(client: unknown): string {
  if (typeof client !== 'string') throw new BadHelloError(`client must be a string, got ${describe(client)}`);
  // Code points: at most 2 UTF-16 units each, so a string of up to 100 units is short enough without counting.
  if (client.length > HELLO_CLIENT_MAX_CHARS && codePointCount(client) > HELLO_CLIENT_MAX_CHARS) {
    throw new BadHelloError(`client must be at most ${HELLO_CLIENT_MAX_CHARS} characters`);
  }
  if (CONTROL_CHARACTER.test(client)) throw new BadHelloError('client must hold no control character');
  if (LONE_SURROGATE.test(client)) throw new BadHelloError('client must be well-formed Unicode (no lone surrogate)');
  return client;
}

/**
 * [P-15] [P-26] A REQUEST. Checks, in order:
 * - `id` missing or not an integer in 0..4294967295: `BadRequestError` with `requestId` null;
 * - `command` missing or not a string: `BadRequestError` with the id;
 * - `command` a string but not a command: `UnknownCommandError` with the id;
 * - `get` without a string `image`: `BadRequestError` with the id. The name itself is the catalog's business
 *   (an empty or strange name is `image-not-found`, not `bad-request`).
 * - `get` with a `have` that is not 64 lowercase hex digits: `BadRequestError` with the id ([P-34]).
 * Fields a command does not use (e.g. `image` on `list`) are ignored ([P-6]).
 */
export function parseRequest(obj: JsonObject): Request {
  const id = field(obj, 'id');
  const command = field(obj, 'command');
  if (!isRequestId(id)) {
    throw new BadRequestError(null, `id must be an integer from 0 to ${MAX_REQUEST_ID}`, readableParts(obj, command));
  }
  if (typeof command !== 'string') throw new BadRequestError(id, 'command must be a string');
  if (!isCommand(command)) throw new UnknownCommandError(id, command);
  if (command === 'list') return parseListRequest(obj, id);
  if (command === 'usage') return parseUsageRequest(obj, id);
  if (command !== 'get') return { id, command };
  const image = field(obj, 'image');
  if (typeof image !== 'string') throw new BadRequestError(id, 'get needs an image name (a string)', { command });
  const have = field(obj, 'have');
  if (have === undefined) return { id, command, image };
  if (typeof have !== 'string' || !SHA256_HEX.test(have)) {
    // [P-34] [P-35] Checked before the catalog is: a malformed have is bad-request, whether the image exists or not.
    throw new BadRequestError(id, 'have must be a SHA-256 in 64 lowercase hex digits', { command, image });
  }
  return { id, command, image, have };
}

/** What a refused request's record can say about it: its command and a get's image, when they are strings. */
function readableParts(obj: JsonObject, command: unknown): { command?: string; image?: string } {
  if (typeof command !== 'string') return {};
  const image = command === 'get' ? field(obj, 'image') : undefined;
  return typeof image === 'string' ? { command, image } : { command };
}

/** [P-45] `list` with its optional `after` (a string) and `limit` (a positive integer); anything else: bad-request. */
function parseListRequest(obj: JsonObject, id: number): ListRequest {
  const request: ListRequest = { id, command: 'list' };
  const after = field(obj, 'after');
  if (after !== undefined) {
    if (typeof after !== 'string') {
      throw new BadRequestError(id, 'after must be an image name (a string)', { command: 'list' });
    }
    request.after = after;
  }
  const limit = field(obj, 'limit');
  if (limit !== undefined) {
    if (!isPositiveInteger(limit)) {
      throw new BadRequestError(id, 'limit must be a positive integer', { command: 'list' });
    }
    request.limit = limit;
  }
  return request;
}

/** [P-46] An ISO-8601 date and time with a zone (Z or ±hh:mm), or a date alone (midnight UTC). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * [P-46] A time of ISO_TIME's form that names a real moment. Date.parse accepts a day past the end of its month
 * (`2026-02-30`, `2025-02-29`) and rolls it into the next month; such a date is no date, so it is refused.
 */
function isCalendarTime(value: string): boolean {
  if (Number.isNaN(Date.parse(value))) return false;
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const day = Number(value.slice(8, 10));
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** [P-46] `usage` with its optional `client` (a session name) and `since` / `until` (ISO-8601 times). */
function parseUsageRequest(obj: JsonObject, id: number): UsageCommandRequest {
  const request: UsageCommandRequest = { id, command: 'usage' };
  const client = field(obj, 'client');
  if (client !== undefined) {
    if (typeof client !== 'string') {
      throw new BadRequestError(id, 'client must be a session name (a string)', { command: 'usage' });
    }
    request.client = client;
  }
  for (const name of ['since', 'until'] as const) {
    const value = field(obj, name);
    if (value === undefined) continue;
    if (typeof value !== 'string' || !ISO_TIME.test(value) || !isCalendarTime(value)) {
      const message = `${name} must be an ISO-8601 time such as 2026-11-25T10:00:00Z`;
      throw new BadRequestError(id, message, { command: 'usage' });
    }
    request[name] = value;
  }
  return request;
}

// ---------------------------------------------------------------------------------------------------------------
// Client side: WELCOME, REJECT, REPLY, ERROR, NOTICE, END

/** [P-12] A WELCOME. */
export function parseWelcome(obj: JsonObject): Welcome {
  return {
    version: positiveInteger(obj, 'version'),
    server: string(obj, 'server'),
    session: parseSession(object(obj, 'session')),
    quota: parseQuota(object(obj, 'quota')),
    limits: parseLimits(object(obj, 'limits')),
  };
}

/**
 * [P-13] A REJECT. `reason` and `message` are required; an unknown reason is kept verbatim ([P-33]). The extra
 * fields are kept when present and well-formed for any reason, and refused when malformed.
 */
export function parseReject(obj: JsonObject): ReceivedReject {
  const reject: ReceivedReject = { reason: nonEmptyString(obj, 'reason'), message: string(obj, 'message') };
  const occupancy = field(obj, 'occupancy');
  if (occupancy !== undefined) reject.occupancy = parseOccupancy(expectObject(occupancy, 'occupancy'));
  const retryAfterMs = field(obj, 'retryAfterMs');
  if (retryAfterMs !== undefined) reject.retryAfterMs = expectCount(retryAfterMs, 'retryAfterMs');
  const supported = field(obj, 'supported');
  if (supported !== undefined) reject.supported = expectArray(supported, 'supported', expectPositiveInteger);
  return reject;
}

/** [P-17] [P-18] [P-19] [P-22] [P-23] [P-35] A REPLY, checked according to its `command`. */
export function parseReply(obj: JsonObject): Reply {
  const id = requestId(obj, 'id');
  const command = field(obj, 'command');
  if (command === 'get' && field(obj, 'status') === 'not-modified') {
    return { id, command, status: 'not-modified', ...parseGetStream(obj), quota: parseQuota(object(obj, 'quota')) };
  }
  literal(obj, 'status', 'ok');
  const quota = parseQuota(object(obj, 'quota'));
  switch (command) {
    case 'list':
      return {
        id,
        command,
        status: 'ok',
        images: parseImages(obj),
        ...parseListMore(obj),
        session: parseSession(object(obj, 'session')),
        quota,
      };
    case 'get':
      return { id, command, status: 'ok', ...parseGetStream(obj), stream: literal(obj, 'stream', true), quota };
    case 'usage': {
      const contentType = literal(obj, 'contentType', 'application/json');
      return { id, command, status: 'ok', contentType, stream: literal(obj, 'stream', true), quota };
    }
    case 'exit':
      return { id, command, status: 'ok', quota };
    default:
      throw malformed('command', `one of ${COMMANDS.join(', ')}`, command);
  }
}

/**
 * [P-26] An ERROR. `id` is a request id or null; `code` is kept verbatim, known or not ([P-33]: the caller treats an
 * unknown code by its `fatal`). `quota` is checked when present; [P-17] says answers carry it, but the parser does
 * not insist, since a client needs no quota to report an error.
 */
export function parseErrorBody(obj: JsonObject): ReceivedErrorBody {
  const id = field(obj, 'id');
  const body: ReceivedErrorBody = {
    id: id === null ? null : expectRequestId(id, 'id'),
    code: nonEmptyString(obj, 'code'),
    message: string(obj, 'message'),
    fatal: boolean(obj, 'fatal'),
  };
  const quota = field(obj, 'quota');
  if (quota !== undefined) body.quota = parseQuota(expectObject(quota, 'quota'));
  const retryAfterMs = field(obj, 'retryAfterMs'); // [P-48]
  if (retryAfterMs !== undefined) body.retryAfterMs = expectCount(retryAfterMs, 'retryAfterMs');
  return body;
}

/** [P-27] [P-28] [P-29] A NOTICE. An unknown `kind` is kept verbatim ([P-33]); `closing` tells what to do. */
export function parseNotice(obj: JsonObject): ReceivedNotice {
  return { kind: nonEmptyString(obj, 'kind'), message: string(obj, 'message'), closing: boolean(obj, 'closing') };
}

/** [P-24] An END: the stream's length and SHA-256 (hex, returned in lowercase). */
export function parseStreamEnd(obj: JsonObject): StreamEnd {
  return { bytes: count(obj, 'bytes'), sha256: sha256(obj, 'sha256') };
}

/** [P-26] [P-33] Whether `code` is one of the version 1 error codes. */
export function isKnownErrorCode(code: string): code is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code);
}

/** [P-15] Whether `command` is one of the version 1 commands. */
export function isCommand(command: string): command is Command {
  return (COMMANDS as readonly string[]).includes(command);
}

// ---------------------------------------------------------------------------------------------------------------
// Nested parts

function parseSession(obj: JsonObject): SessionIdentity {
  const session: SessionIdentity = {
    name: string(obj, 'name'),
    code: count(obj, 'code'),
    tier: string(obj, 'tier'),
    canReadUsage: boolean(obj, 'canReadUsage'),
  };
  // [P-67] [P-68] a keyed session's identity and usage scope
  if (field(obj, 'identity') !== undefined) session.identity = string(obj, 'identity');
  const scope = field(obj, 'usageScope');
  if (scope === 'all' || scope === 'own') session.usageScope = scope;
  return session;
}

/** [P-17] [P-64] */
function parseQuota(obj: JsonObject): Quota {
  const quota: Quota = { limit: count(obj, 'limit'), used: count(obj, 'used'), remaining: count(obj, 'remaining') };
  // [P-64] `resetsAt` goes with `period`: a quota without a period is the session's, and resets with nothing
  if (field(obj, 'period') === undefined) return quota;
  quota.period = string(obj, 'period');
  quota.resetsAt = field(obj, 'resetsAt') === null ? null : string(obj, 'resetsAt');
  return quota;
}

/** [P-3] [P-12] The frame limits are u32 lengths. */
function parseLimits(obj: JsonObject): ServerLimits {
  return {
    maxRequestBytes: frameLimit(obj, 'maxRequestBytes'),
    maxFrameBytes: frameLimit(obj, 'maxFrameBytes'),
    idleTimeoutMs: count(obj, 'idleTimeoutMs'),
  };
}

function parseOccupancy(obj: JsonObject): { open: number; capacity: number } {
  return { open: count(obj, 'open'), capacity: count(obj, 'capacity') };
}

/** [P-18] */
function parseImages(obj: JsonObject): ImageInfo[] {
  return expectArray(field(obj, 'images'), 'images', (value, name) => parseImageInfo(expectObject(value, name)));
}

function parseImageInfo(obj: JsonObject): ImageInfo {
  return {
    name: string(obj, 'name'),
    bytes: count(obj, 'bytes'),
    modified: string(obj, 'modified'),
    sha256: sha256(obj, 'sha256'),
  };
}

/** [P-45] `more` and `next`; a REPLY without them (an older server) holds the whole catalog. */
function parseListMore(obj: JsonObject): { more?: boolean; next?: string | null } {
  if (field(obj, 'more') === undefined) return {};
  const more = boolean(obj, 'more');
  if (!more) return { more, next: null };
  return { more, next: string(obj, 'next') };
}

/** [P-19] [P-35] The fields of a `get` REPLY that describe the image. */
function parseGetStream(obj: JsonObject): { image: string; bytes: number; sha256: string; modified: string } {
  return {
    image: string(obj, 'image'),
    bytes: count(obj, 'bytes'),
    sha256: sha256(obj, 'sha256'),
    modified: string(obj, 'modified'),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Field readers: each reads one field of `obj` and throws MalformedMessageError when it is missing or wrong.

/** An own field of `obj` (never one inherited from Object.prototype), or undefined. */
function field(obj: JsonObject, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

function string(obj: JsonObject, name: string): string {
  const value = field(obj, name);
  if (typeof value !== 'string') throw malformed(name, 'a string', value);
  return value;
}

function nonEmptyString(obj: JsonObject, name: string): string {
  const value = string(obj, name);
  if (value === '') throw malformed(name, 'a non-empty string', value);
  return value;
}

function boolean(obj: JsonObject, name: string): boolean {
  const value = field(obj, name);
  if (typeof value !== 'boolean') throw malformed(name, 'a boolean', value);
  return value;
}

function object(obj: JsonObject, name: string): JsonObject {
  return expectObject(field(obj, name), name);
}

function count(obj: JsonObject, name: string): number {
  return expectCount(field(obj, name), name);
}

function positiveInteger(obj: JsonObject, name: string): number {
  return expectPositiveInteger(field(obj, name), name);
}

function requestId(obj: JsonObject, name: string): number {
  return expectRequestId(field(obj, name), name);
}

function frameLimit(obj: JsonObject, name: string): number {
  const value = field(obj, name);
  if (!isRequestId(value) || value === 0) throw malformed(name, `an integer from 1 to ${MAX_REQUEST_ID}`, value);
  return value;
}

function sha256(obj: JsonObject, name: string): string {
  const value = field(obj, name);
  const hex = typeof value === 'string' ? value.toLowerCase() : undefined;
  if (hex === undefined || !SHA256_HEX.test(hex)) throw malformed(name, '64 hex digits', value);
  return hex;
}

function literal<T extends string | boolean>(obj: JsonObject, name: string, expected: T): T {
  const value = field(obj, name);
  if (value !== expected) throw malformed(name, JSON.stringify(expected), value);
  return expected;
}

function expectObject(value: unknown, name: string): JsonObject {
  if (!isJsonObject(value)) throw malformed(name, 'an object', value);
  return value;
}

function expectCount(value: unknown, name: string): number {
  if (!isCount(value)) throw malformed(name, 'a non-negative integer', value);
  return value;
}

function expectPositiveInteger(value: unknown, name: string): number {
  if (!isPositiveInteger(value)) throw malformed(name, 'a positive integer', value);
  return value;
}

function expectRequestId(value: unknown, name: string): number {
  if (!isRequestId(value)) throw malformed(name, `an integer from 0 to ${MAX_REQUEST_ID}`, value);
  return value;
}

function expectArray<T>(value: unknown, name: string, item: (value: unknown, name: string) => T): T[] {
  if (!isArray(value)) throw malformed(name, 'an array', value);
  return value.map((element, index) => item(element, `${name}[${index}]`));
}

// ---------------------------------------------------------------------------------------------------------------
// Predicates and helpers

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `Array.isArray` without its `any[]`. */
function isArray(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

/** A non-negative safe integer (lengths, quota counts, durations). */
function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPositiveInteger(value: unknown): value is number {
  return isCount(value) && value > 0;
}

/** [P-15] An integer from 0 to 4294967295. */
function isRequestId(value: unknown): value is number {
  return isCount(value) && value <= MAX_REQUEST_ID;
}

function codePointCount(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

function malformed(name: string, expected: string, actual: unknown): MalformedMessageError {
  return new MalformedMessageError(`${name} must be ${expected}, got ${describe(actual)}`);
}

/** A short description of a JSON value for an error message (never the whole value: it may be large). */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length <= 40 ? JSON.stringify(value) : 'a long string';
  if (typeof value === 'object') return 'an object';
  return String(value);
}
