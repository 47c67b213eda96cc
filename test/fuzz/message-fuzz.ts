/**
 * Fuzz properties of the message parsers (src/protocol/parse-message.ts), [P-5], [P-6], [P-8], [P-11], [P-15],
 * [P-26]:
 *
 * - `parseJsonBody` returns a JSON object or throws `malformed-message`, whatever the bytes;
 * - each message parser returns a well-formed message or throws one of its documented coded errors (HELLO:
 *   `bad-hello`; REQUEST: `bad-request` or `unknown-command`, with `id` echoed exactly when it is a valid id; the
 *   client-side parsers: `malformed-message`), never a TypeError or a RangeError;
 * - every valid message, with unknown fields added anywhere ([P-6]), goes through encoder, decoder and parser and
 *   comes back equal to what was sent, without the unknown fields.
 */
import { isDeepStrictEqual } from 'node:util';
import { ImgcacheError, ProtocolError } from '../../src/errors.ts';
import { encodeJsonFrame, type Frame, FrameDecoder } from '../../src/protocol/frame.ts';
import { COMMANDS, FATAL_ERROR_CODES, type MessageType, MessageType as Type } from '../../src/protocol/messages.ts';
import {
  HELLO_CLIENT_MAX_CHARS,
  type JsonObject,
  MAX_REQUEST_ID,
  parseErrorBody,
  parseHello,
  parseJsonBody,
  parseNotice,
  parseReject,
  parseReply,
  parseRequest,
  parseStreamEnd,
  parseWelcome,
} from '../../src/protocol/parse-message.ts';
import { cutIntoChunks } from './frame-fuzz.ts';
import {
  cloneJson,
  EDGE_STRINGS,
  FIELD_NAMES,
  jsonNumber,
  jsonObject,
  jsonString,
  jsonValue,
  oddJsonText,
  setOwn,
  withInvalidUtf8,
} from './json-values.ts';
import type { Random } from './random.ts';
import { describeBytes, describeValue, PropertyViolation } from './run-cases.ts';

/** A valid message and what its parser must return for it. */
interface ValidMessage {
  message: Record<string, unknown>;
  parsed: unknown;
}

export interface ParserSpec {
  name: string;
  type: MessageType;
  parse(obj: JsonObject): unknown;
  /** [P-26] (and [P-11]) the codes this parser may throw */
  codes: readonly string[];
  valid(random: Random): ValidMessage;
  /** extra checks of a returned message, given the object it came from; throws a description of what is wrong */
  check?(result: unknown, obj: JsonObject): void;
}

// ---------------------------------------------------------------------------------------------------------------
// Valid messages

const count = (random: Random) => random.pick([0, 1, 3, 20, 4096, 0xffffffff, random.below(2 ** 31)]);
const positive = (random: Random) => 1 + random.below(2 ** 31);
const requestId = (random: Random) => random.pick([0, 1, MAX_REQUEST_ID, random.below(MAX_REQUEST_ID + 1)]);
const text = (random: Random) => jsonString(random);
const nonEmpty = (random: Random) => text(random) || 'x';
const sha256 = (random: Random) => random.bytes(32).toString('hex');
const quota = (random: Random) => ({ limit: count(random), used: count(random), remaining: count(random) });
const session = (random: Random) => ({
  name: text(random),
  code: count(random),
  tier: text(random),
  canReadUsage: random.chance(0.5),
});
const image = (random: Random) => ({
  name: text(random),
  bytes: count(random),
  modified: new Date(random.below(2 ** 41)).toISOString(),
  sha256: sha256(random),
});
const same = (message: Record<string, unknown>): ValidMessage => ({ message, parsed: cloneJson(message) });

/** [P-8] [P-51] At most 100 code points, no control character (C0, DEL, C1), no lone surrogate. */
function isValidHelloClient(client: unknown): boolean {
  if (typeof client !== 'string' || Array.from(client).length > HELLO_CLIENT_MAX_CHARS) return false;
  return Array.from(client).every((char) => {
    const code = char.codePointAt(0) ?? 0;
    return !(code < 0x20 || (code >= 0x7f && code <= 0x9f) || (code >= 0xd800 && code <= 0xdfff));
  });
}

function validHello(random: Random): ValidMessage {
  const versions = Array.from({ length: 1 + random.size(5) }, () => random.pick([1, 2, positive(random)]));
  const message: Record<string, unknown> = { versions };
  const parsed: Record<string, unknown> = { versions: [...versions] };
  if (random.chance(0.5)) {
    const candidate = random.chance(0.3) ? '😀é'.repeat(random.between(20, 50)) : text(random);
    const client = isValidHelloClient(candidate) ? candidate : 'fuzz-client/1.0';
    message.client = client;
    parsed.client = client; // [P-8] [P-51] kept whole
  }
  if (random.chance(0.3)) message.credential = jsonValue(random); // [P-8] reserved, ignored
  return { message, parsed };
}

function validRequest(random: Random): ValidMessage {
  const command = random.pick(COMMANDS);
  const message: Record<string, unknown> = { id: requestId(random), command };
  if (command === 'get') {
    message.image = random.chance(0.5) ? random.pick(EDGE_STRINGS) : text(random);
    if (random.chance(0.2)) message.have = sha256(random);
  }
  return same(message);
}

function validReply(random: Random): ValidMessage {
  const id = requestId(random);
  const stream = { image: text(random), bytes: count(random), sha256: sha256(random), modified: text(random) };
  return same(
    random.weighted<Record<string, unknown>>([
      [
        1,
        () => ({
          id,
          command: 'list',
          status: 'ok',
          images: [image(random)],
          session: session(random),
          quota: quota(random),
        }),
      ],
      [1, () => ({ id, command: 'get', status: 'ok', ...stream, stream: true, quota: quota(random) })],
      [1, () => ({ id, command: 'get', status: 'not-modified', ...stream, quota: quota(random) })],
      [
        1,
        () => ({
          id,
          command: 'usage',
          status: 'ok',
          contentType: 'application/json',
          stream: true,
          quota: quota(random),
        }),
      ],
      [1, () => ({ id, command: 'exit', status: 'ok', quota: quota(random) })],
    ]),
  );
}

function validReject(random: Random): ValidMessage {
  const message: Record<string, unknown> = { reason: nonEmpty(random), message: text(random) };
  if (random.chance(0.5)) message.occupancy = { open: count(random), capacity: count(random) };
  if (random.chance(0.5)) message.retryAfterMs = count(random);
  if (random.chance(0.5)) message.supported = Array.from({ length: random.size(3) }, () => positive(random));
  return same(message);
}

function validError(random: Random): ValidMessage {
  const message: Record<string, unknown> = {
    id: random.chance(0.3) ? null : requestId(random),
    code: nonEmpty(random),
    message: text(random),
    fatal: random.chance(0.5),
  };
  if (random.chance(0.7)) message.quota = quota(random);
  return same(message);
}

function validStreamEnd(random: Random): ValidMessage {
  const digest = sha256(random);
  const bytes = count(random);
  // [P-24] upper-case hex is accepted and returned in lower case
  return {
    message: { bytes, sha256: random.chance(0.3) ? digest.toUpperCase() : digest },
    parsed: { bytes, sha256: digest },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The parsers and their contracts

export const PARSERS: readonly ParserSpec[] = [
  {
    name: 'HELLO',
    type: Type.HELLO,
    parse: parseHello,
    codes: ['bad-hello'],
    valid: validHello,
    check(result) {
      const hello = result as { versions: unknown; client?: unknown };
      const versions = hello.versions;
      if (!Array.isArray(versions) || versions.length === 0) throw new Error('[P-8] versions is not a non-empty array');
      if (!versions.every((version) => Number.isSafeInteger(version) && version > 0)) {
        throw new Error('[P-8] versions holds something else than positive integers');
      }
      if ('client' in hello && !isValidHelloClient(hello.client)) {
        throw new Error('[P-8] [P-51] client is not a string of at most 100 characters without control characters');
      }
      if ('credential' in hello) throw new Error('[P-8] the credential was copied');
    },
  },
  {
    name: 'REQUEST',
    type: Type.REQUEST,
    parse: parseRequest,
    codes: ['bad-request', 'unknown-command'],
    valid: validRequest,
    check(result, obj) {
      const request = result as { id: unknown; command: unknown; image?: unknown };
      if (request.id !== obj.id || !isRequestId(request.id)) throw new Error('[P-15] id is not the one sent');
      if (!(COMMANDS as readonly unknown[]).includes(request.command)) throw new Error('[P-15] unknown command');
      if (request.command === 'get' && typeof request.image !== 'string') throw new Error('[P-15] get without image');
    },
  },
  { name: 'WELCOME', type: Type.WELCOME, parse: parseWelcome, codes: ['malformed-message'], valid: validWelcome },
  { name: 'REJECT', type: Type.REJECT, parse: parseReject, codes: ['malformed-message'], valid: validReject },
  { name: 'REPLY', type: Type.REPLY, parse: parseReply, codes: ['malformed-message'], valid: validReply },
  { name: 'ERROR', type: Type.ERROR, parse: parseErrorBody, codes: ['malformed-message'], valid: validError },
  {
    name: 'NOTICE',
    type: Type.NOTICE,
    parse: parseNotice,
    codes: ['malformed-message'],
    valid: (random) => same({ kind: nonEmpty(random), message: text(random), closing: random.chance(0.5) }),
  },
  {
    name: 'END',
    type: Type.END,
    parse: parseStreamEnd,
    codes: ['malformed-message'],
    valid: validStreamEnd,
    check(result) {
      const end = result as { bytes: unknown; sha256: unknown };
      if (!Number.isSafeInteger(end.bytes) || (end.bytes as number) < 0) throw new Error('[P-24] bytes is not a count');
      if (typeof end.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(end.sha256)) {
        throw new Error('[P-24] sha256 is not 64 lowercase hex digits');
      }
    },
  },
];

function validWelcome(random: Random): ValidMessage {
  const frameLimit = () => random.pick([1, 256, 4096, 1048576, MAX_REQUEST_ID]);
  return same({
    version: positive(random),
    server: text(random),
    session: session(random),
    quota: quota(random),
    limits: { maxRequestBytes: frameLimit(), maxFrameBytes: frameLimit(), idleTimeoutMs: count(random) },
  });
}

function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_REQUEST_ID;
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations

/** Every (container, key) place in a JSON value, the root excluded. */
function places(value: unknown, found: Array<[Record<string, unknown> | unknown[], string | number]> = []) {
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      found.push([value, index]);
      places(item, found);
    });
  } else if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      found.push([obj, key]);
      places(obj[key], found);
    }
  }
  return found;
}

/** A few edits anywhere in the message: drop a field, give it another type or an edge value, add one. */
export function mutateMessage(random: Random, message: Record<string, unknown>): Record<string, unknown> {
  const copy = cloneJson(message);
  for (let edits = 1 + random.size(3); edits > 0; edits--) {
    const spots = places(copy);
    const spot = spots.length > 0 && random.chance(0.85) ? random.pick(spots) : null;
    if (!spot) {
      setOwn(copy, random.pick(FIELD_NAMES), jsonValue(random));
      continue;
    }
    const [container, key] = spot;
    const replacement = random.weighted<unknown>([
      [3, () => jsonValue(random, 1)],
      [2, () => jsonNumber(random)],
      [1, () => String(random.below(1000))],
      [1, () => [container[key as never]]],
      [1, () => null],
    ]);
    if (Array.isArray(container)) {
      if (random.chance(0.2)) container.splice(key as number, 1);
      else container[key as number] = replacement;
    } else if (random.chance(0.25)) {
      delete container[key as string];
    } else {
      setOwn(container, key as string, replacement);
    }
  }
  return copy;
}

/** Unknown fields ([P-6]) added to the message and to its nested objects. */
function withUnknownFields(random: Random, message: Record<string, unknown>): Record<string, unknown> {
  const copy = cloneJson(message);
  const objects = [copy, ...places(copy).map(([container, key]) => container[key as never] as unknown)].filter(
    (value): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value),
  );
  for (let added = random.size(4); added > 0; added--) {
    const key = random.pick(['__proto__', 'constructor', 'toString', 'x-future', `x-${random.below(1000)}`, '']);
    setOwn(random.pick(objects), key, jsonValue(random, 2));
  }
  return copy;
}

/** The bytes of a body: a (maybe mutated) message as JSON, an odd JSON text, broken UTF-8, a BOM, or garbage. */
export function hostileBody(random: Random, spec: ParserSpec): Buffer {
  const base = () => spec.valid(random).message;
  const json = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'null', 'utf8');
  return random.weighted<Buffer>([
    [2, () => json(base())],
    [6, () => json(mutateMessage(random, base()))],
    [2, () => json(jsonObject(random))],
    [1, () => json(jsonValue(random))],
    [2, () => Buffer.from(oddJsonText(random), 'utf8')],
    [1, () => withInvalidUtf8(random, json(base()))],
    [1, () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(base())])],
    [1, () => json(base()).subarray(0, random.below(json(base()).length))],
    [1, () => random.bytes(random.size(200))],
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// Properties

/** Only a documented error passes: an ImgcacheError with one of `codes`, fatal as [P-26] says when it is an ERROR. */
function checkDocumentedError(error: unknown, codes: readonly string[], where: string, input: string): ImgcacheError {
  if (!(error instanceof ImgcacheError) || !codes.includes(error.code)) {
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new PropertyViolation(`${where} threw ${what}, not one of ${codes.join(', ')}`, input);
  }
  if (error instanceof ProtocolError && error.fatal !== FATAL_ERROR_CODES.has(error.code)) {
    throw new PropertyViolation(`[P-26] ${error.code} with fatal ${error.fatal}`, input);
  }
  return error;
}

/**
 * [P-5] [P-11] [P-15] [P-26] Any body, for any message type: parseJsonBody and the type's parser return a
 * well-formed result or throw a documented coded error; a REQUEST error echoes the id exactly when it is valid.
 */
export function parsersThrowOnlyCodedErrors(random: Random): void {
  const spec = random.pick(PARSERS);
  const body = hostileBody(random, spec);
  const input = `${spec.name} body, ${describeBytes(body, 160)}`;
  let obj: JsonObject;
  try {
    obj = parseJsonBody(body);
  } catch (error) {
    checkDocumentedError(error, ['malformed-message'], 'parseJsonBody', input);
    return;
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new PropertyViolation('[P-5] parseJsonBody returned something else than an object', input);
  }
  let result: unknown;
  try {
    result = spec.parse(obj);
  } catch (error) {
    const coded = checkDocumentedError(error, spec.codes, `parse ${spec.name}`, input);
    if (spec.type === Type.REQUEST && coded instanceof ProtocolError) {
      const id = Object.hasOwn(obj, 'id') ? obj.id : undefined;
      const expected = isRequestId(id) ? id : null;
      if (coded.requestId !== expected) {
        throw new PropertyViolation(`[P-26] ${coded.code} answers id ${coded.requestId}, not ${expected}`, input);
      }
    }
    return;
  }
  try {
    spec.check?.(result, obj);
  } catch (problem) {
    throw new PropertyViolation(`parse ${spec.name} returned ${describeValue(result)}: ${String(problem)}`, input);
  }
}

/**
 * [P-2] [P-5] [P-6] A valid message with unknown fields, encoded as a frame and decoded from random chunks, parses
 * back to exactly the known fields that were sent.
 */
export function validMessagesRoundTrip(random: Random): void {
  const spec = random.pick(PARSERS);
  const { message, parsed } = spec.valid(random);
  const sent = random.chance(0.6) ? withUnknownFields(random, message) : message;
  const frame = encodeJsonFrame(spec.type, sent);
  const input = `${spec.name} ${describeValue(sent)}`;
  const decoder = new FrameDecoder({ maxBodyBytes: frame.length });
  const frames: Frame[] = [];
  let result: unknown;
  try {
    for (const chunk of cutIntoChunks(random, frame)) frames.push(...decoder.push(chunk));
    decoder.end();
    const [only] = frames;
    if (frames.length !== 1 || !only || only.type !== spec.type) throw new Error('not one frame of the right type');
    result = spec.parse(parseJsonBody(only.body));
  } catch (error) {
    throw new PropertyViolation(`a valid ${spec.name} was refused: ${String(error)}`, input);
  }
  if (!isDeepStrictEqual(result, parsed)) {
    throw new PropertyViolation(`parsed as ${describeValue(result)}, expected ${describeValue(parsed)}`, input);
  }
}
