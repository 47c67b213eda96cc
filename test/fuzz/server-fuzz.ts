/**
 * One server fuzz case over a real socket. A case is one connection that sends random or mutated bytes, either
 * before the handshake or after a WELCOME, then half-closes and reads everything the server answers until it closes:
 * the answers must follow the wire grammar (server-answers.ts) and be exactly those the spec prescribes
 * (server-oracle.ts). A few cases vanish instead (reset right after sending), to check the server shrugs them off.
 */
import { createHash } from 'node:crypto';
import { ImgcacheClient } from '../../client/imgcache-client.ts';
import {
  encodeFrame,
  encodeJsonFrame,
  MAX_REQUEST_ID,
  MessageType,
  PROTOCOL_VERSIONS,
} from '../../src/protocol/index.ts';
import { RawConnection } from '../helpers/raw-connection.ts';
import { cutIntoChunks, hostileBytes, mutateBytes, pickType } from './frame-fuzz.ts';
import { EDGE_STRINGS } from './json-values.ts';
import { hostileBody, mutateMessage, PARSERS, type ParserSpec } from './message-fuzz.ts';
import type { Random } from './random.ts';
import { type AsyncProperty, describeBytes, describeValue, PropertyViolation } from './run-cases.ts';
import { type Answer, type CatalogDigests, readAnswers, readFirstFrame } from './server-answers.ts';
import { expectedAnswers, expectedFirstFrame, type SessionRules } from './server-oracle.ts';

export interface ServerFuzzTarget {
  port: number;
  rules: SessionRules;
  digests: CatalogDigests;
  /** how long the server may stay silent before a case counts as a hang, in milliseconds */
  deadlineMs: number;
}

export type CaseKind = 'handshake' | 'session' | 'vanish';

function spec(name: string): ParserSpec {
  const found = PARSERS.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no parser spec ${name}`);
  return found;
}

const HELLO_SPEC = spec('HELLO');
const REQUEST_SPEC = spec('REQUEST');

/** Bytes a client might send first: a HELLO with a broken body, a mangled frame, garbage, a HELLO and more. */
function handshakeBytes(random: Random): Buffer {
  const hello = encodeJsonFrame(MessageType.HELLO, { versions: [1] });
  return random.weighted<Buffer>([
    [4, () => encodeFrame(random.chance(0.9) ? MessageType.HELLO : pickType(random), hostileBody(random, HELLO_SPEC))],
    [2, () => mutateBytes(random, hello, 1024)],
    [1, () => random.bytes(random.size(2048))],
    [1, () => hostileBytes(random, 1024)],
    [1, () => Buffer.concat([hello, requestBytes(random, ['sunset.png'])])],
  ]);
}

/** One request as an object: mostly well-formed, with names from the catalog and from the hostile list. */
function request(random: Random, images: readonly string[]): Record<string, unknown> {
  const command = random.weighted<string>([
    [2, () => 'list'],
    [5, () => 'get'],
    [1, () => 'usage'],
    [0.3, () => 'exit'],
    [0.5, () => random.pick(['LIST', 'dance', '', 'get '])],
  ]);
  const message: Record<string, unknown> = { id: random.pick([0, 1, MAX_REQUEST_ID, random.below(1000)]), command };
  if (command === 'get' || random.chance(0.1)) {
    message.image = random.chance(0.6) ? random.pick(images) : random.pick(EDGE_STRINGS);
  }
  if (random.chance(0.1)) message.have = random.chance(0.5) ? random.bytes(32).toString('hex') : 'not-a-digest';
  return message;
}

/** Frames a client sends after the WELCOME: requests, some mutated, some of other types, maybe mangled bytes. */
function requestBytes(random: Random, images: readonly string[]): Buffer {
  const frames = Array.from({ length: 1 + random.size(10) }, () => {
    const type = random.chance(0.92) ? MessageType.REQUEST : pickType(random);
    const body = random.weighted<Buffer>([
      [6, () => Buffer.from(JSON.stringify(request(random, images)))],
      [2, () => Buffer.from(JSON.stringify(mutateMessage(random, request(random, images))))],
      [1, () => hostileBody(random, REQUEST_SPEC)],
    ]);
    return encodeFrame(type, body);
  });
  const bytes = Buffer.concat(frames);
  return random.chance(0.15) ? mutateBytes(random, bytes, 4096) : bytes;
}

/** Writes `bytes` in the pieces a random cut gives (never more than 64 writes). */
function sendInPieces(random: Random, peer: RawConnection, bytes: Buffer): void {
  const pieces = cutIntoChunks(random, bytes);
  if (pieces.length > 64) peer.send(bytes);
  else for (const piece of pieces) peer.send(piece);
}

function sameAnswer(actual: Answer | undefined, expected: Answer | undefined): boolean {
  return JSON.stringify(actual) === JSON.stringify(expected);
}

async function handshakeCase(random: Random, target: ServerFuzzTarget, vanish: boolean): Promise<void> {
  const bytes = handshakeBytes(random);
  const input = `before the handshake: ${describeBytes(bytes, 200)}`;
  const peer = await RawConnection.open(target.port);
  try {
    sendInPieces(random, peer, bytes);
    if (vanish) return;
    peer.socket.end();
    const expected = expectedFirstFrame(bytes, target.rules);
    const first = await readFirstFrame(peer, input, target.deadlineMs);
    if (!sameAnswer(first as never, expected as never)) {
      throw new PropertyViolation(
        `[P-9] first answer ${describeValue(first)}, expected ${describeValue(expected)}`,
        input,
      );
    }
    // What follows the WELCOME depends on how TCP cut the bytes around it: it must only be well-formed.
    if (first.kind === 'welcome') await readAnswers(peer, target.digests, input, target.deadlineMs);
  } finally {
    peer.destroy();
  }
}

async function sessionCase(random: Random, target: ServerFuzzTarget, vanish: boolean): Promise<void> {
  const bytes = requestBytes(random, [...target.rules.images]);
  const input = `after the WELCOME: ${describeBytes(bytes, 200)}`;
  const peer = await RawConnection.open(target.port);
  try {
    peer.hello();
    const first = await readFirstFrame(peer, input, target.deadlineMs);
    if (first.kind !== 'welcome') throw new PropertyViolation(`a valid HELLO got ${describeValue(first)}`, input);
    sendInPieces(random, peer, bytes);
    if (vanish) return;
    peer.socket.end();
    const expected = expectedAnswers(bytes, target.rules);
    const answers = await readAnswers(peer, target.digests, input, target.deadlineMs);
    const wrong = Math.max(answers.length, expected.length);
    for (let index = 0; index < wrong; index++) {
      if (!sameAnswer(answers[index], expected[index])) {
        throw new PropertyViolation(
          `answer ${index + 1} was ${describeValue(answers[index] ?? 'none')}, expected ${describeValue(expected[index] ?? 'none')}`,
          input,
        );
      }
    }
  } finally {
    peer.destroy();
  }
}

/** A case against a running server; `kinds` says which kinds of case to draw from. */
export function serverCase(target: ServerFuzzTarget): AsyncProperty {
  return async (random) => {
    const kind = random.weighted<CaseKind>([
      [4, () => 'handshake'],
      [6, () => 'session'],
      [1, () => 'vanish'],
    ]);
    if (kind === 'handshake') await handshakeCase(random, target, false);
    else if (kind === 'session') await sessionCase(random, target, false);
    else if (random.chance(0.5)) await handshakeCase(random, target, true);
    else await sessionCase(random, target, true);
  };
}

/**
 * A well-behaved client's session: it lists, downloads an image and checks its SHA-256, and exits. Used to learn
 * the catalog and the session's rules before fuzzing, and to show the server still serves after it.
 */
export async function goodClientSession(port: number, deadlineMs: number): Promise<Omit<ServerFuzzTarget, 'port'>> {
  const client = await ImgcacheClient.connect({ port, timeoutMs: deadlineMs });
  const list = await client.list();
  const digests = new Map(list.images.map((image) => [image.name, image.sha256]));
  const smallest = [...list.images].sort((a, b) => a.bytes - b.bytes)[0];
  if (!smallest) throw new Error('the server lists no image');
  const hash = createHash('sha256');
  const got = await client.getInto(smallest.name, { write: (piece) => void hash.update(piece) });
  if (hash.digest('hex') !== smallest.sha256 || got.end.sha256 !== smallest.sha256) {
    throw new Error(`${smallest.name} did not arrive intact`);
  }
  await client.exit();
  const { welcome } = client;
  return {
    rules: {
      maxRequestBytes: welcome.limits.maxRequestBytes,
      quotaLimit: welcome.quota.limit,
      canReadUsage: welcome.session.canReadUsage,
      images: new Set(digests.keys()),
      versions: PROTOCOL_VERSIONS,
    },
    digests,
    deadlineMs,
  };
}
