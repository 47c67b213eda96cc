/**
 * Random JSON values and JSON texts for the message fuzzers, biased towards what breaks parsers: the protocol's own
 * field names, prototype keys, numbers at the edges of the integer ranges, path-like and unicode strings, invalid
 * UTF-8, byte order marks, deep nesting.
 */
import type { Random } from './random.ts';

/** Field names the parsers look for, and keys that reach Object.prototype when handled carelessly. */
export const FIELD_NAMES = [
  'versions',
  'client',
  'credential',
  'id',
  'command',
  'image',
  'have',
  'version',
  'server',
  'session',
  'name',
  'code',
  'tier',
  'canReadUsage',
  'quota',
  'limit',
  'used',
  'remaining',
  'limits',
  'maxRequestBytes',
  'maxFrameBytes',
  'idleTimeoutMs',
  'reason',
  'message',
  'occupancy',
  'open',
  'capacity',
  'retryAfterMs',
  'supported',
  'status',
  'images',
  'bytes',
  'modified',
  'sha256',
  'stream',
  'contentType',
  'fatal',
  'kind',
  'closing',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '',
] as const;

export const EDGE_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  2,
  100,
  999,
  1000,
  4096,
  0xffffffff,
  0x100000000,
  2 ** 31,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  1e21,
  1e308,
  -1e-7,
  Number.MIN_VALUE,
] as const;

export const EDGE_STRINGS = [
  '',
  'list',
  'get',
  'usage',
  'exit',
  'sunset.png',
  'mandelbrot.png',
  'checkerboard-dice.png',
  'terrain-large.png',
  '../../etc/passwd',
  '/etc/passwd',
  '..\\..\\windows\\win.ini',
  '%2e%2e%2fsecret',
  'sunset.png\u0000.txt',
  'ѕunset.png',
  'sunset\u2024png',
  'Sunset.PNG',
  '\ud800',
  '\udfff\ud800',
  '😀'.repeat(120),
  'a'.repeat(300),
  '9f2c'.repeat(16),
  '9F2C'.repeat(16),
  'bronze',
  'server-full',
  'history-unavailable',
  'idle-timeout',
  'application/json',
  'ok',
  'not-modified',
  '\u202e\u0000\u001f\u007f',
] as const;

export function jsonNumber(random: Random): number {
  return random.weighted<number>([
    [3, () => random.pick(EDGE_NUMBERS)],
    [3, () => random.below(2 ** 32)],
    [1, () => (random.float() - 0.5) * 10 ** random.below(25)],
  ]);
}

export function jsonString(random: Random): string {
  return random.weighted<string>([
    [3, () => random.pick(EDGE_STRINGS)],
    [2, () => randomText(random, random.size(40))],
  ]);
}

/** Characters from ASCII, Latin, CJK, astral planes and lone surrogates. */
function randomText(random: Random, length: number): string {
  let text = '';
  for (let index = 0; index < length; index++) {
    text += random.weighted<string>([
      [6, () => String.fromCharCode(random.between(0x20, 0x7e))],
      [1, () => String.fromCharCode(random.below(0x20))],
      [1, () => String.fromCharCode(random.between(0xa0, 0x2fff))],
      [1, () => String.fromCodePoint(random.between(0x1f300, 0x1f6ff))],
      [1, () => String.fromCharCode(random.between(0xd800, 0xdfff))],
    ]);
  }
  return text;
}

/** Any JSON value, nested at most `depth` deep. */
export function jsonValue(random: Random, depth = 3): unknown {
  const leaf: ReadonlyArray<readonly [number, () => unknown]> = [
    [1, () => null],
    [1, () => random.chance(0.5)],
    [3, () => jsonNumber(random)],
    [3, () => jsonString(random)],
  ];
  if (depth <= 0) return random.weighted(leaf);
  return random.weighted<unknown>([
    ...leaf,
    [1, () => Array.from({ length: random.size(6) }, () => jsonValue(random, depth - 1))],
    [1, () => jsonObject(random, depth - 1)],
  ]);
}

export function jsonObject(random: Random, depth = 2): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (let count = random.size(6); count > 0; count--) {
    setOwn(obj, random.chance(0.7) ? random.pick(FIELD_NAMES) : jsonString(random), jsonValue(random, depth));
  }
  return obj;
}

/** Sets an own enumerable property, `__proto__` included (a plain assignment would change the prototype instead). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A copy of a JSON value (JSON round trip: prototype keys stay own properties). */
export function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** JSON texts that are not what `JSON.stringify` would write: duplicate keys, odd numbers, deep nesting. */
export function oddJsonText(random: Random): string {
  return random.pick([
    '{"id":1,"id":"x","command":"list"}',
    '{"versions":[1],"versions":null}',
    '{"__proto__":{"versions":[1]},"command":"list"}',
    '{"id":1e999,"command":"list"}',
    '{"id":-0,"command":"list"}',
    '{"id":1.0,"command":"list"}',
    '{"id":4294967295.0000001,"command":"list"}',
    '{"versions":[1e0]}',
    `${'['.repeat(2000)}${']'.repeat(2000)}`,
    `{"a":${'{"a":'.repeat(500)}1${'}'.repeat(500)}}`,
    '  {"versions":[1]}  ',
    '{"versions":[1]}\u0000',
    '{"versions":[1]}{"versions":[1]}',
    'null',
    '[]',
    '"str"',
    '12',
    'true',
    '{',
    '',
    '\ufeff{"versions":[1]}',
    '{"command":"get","id":1,"image":"\\u0000"}',
    '{"command":"get","id":1,"image":"\\ud800"}',
  ]);
}

/** Bytes that are not valid UTF-8, put somewhere in `text`. */
export function withInvalidUtf8(random: Random, text: Buffer): Buffer {
  const bad = random.pick([
    [0x80],
    [0xff],
    [0xc0, 0xaf],
    [0xe6, 0x97],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
  ]);
  const at = random.below(text.length + 1);
  return Buffer.concat([text.subarray(0, at), Buffer.from(bad), text.subarray(at)]);
}
