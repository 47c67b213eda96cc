/**
 * Fuzz property of the PROXY v2 header parser (src/server/proxy-protocol.ts), [P-88] and [P-89]. The reader
 * (src/server/proxy-header-reader.ts) parses what has arrived again after each chunk, so the outcome must not depend
 * on how the bytes were cut:
 *
 * - whatever the bytes, the parser throws nothing;
 * - an answer for a prefix stands for every longer input: once `invalid`, the same problem; once `complete`, the same
 *   header; `incomplete` only while fewer than `needed` bytes (at most MAX_PROXY_HEADER_BYTES) are there;
 * - a complete header ends within the input and within the bound.
 */
import {
  MAX_PROXY_HEADER_BYTES,
  PROXY_V2_SIGNATURE,
  type ProxyParse,
  parseProxyHeader,
} from '../../src/server/proxy-protocol.ts';
import type { Random } from './random.ts';
import { describeBytes, PropertyViolation } from './run-cases.ts';

/** A header as a balancer could send it, or a near miss: the bytes worth trying. */
function candidate(random: Random): Buffer {
  const fixed = Buffer.from([
    random.weighted<number>([
      [8, () => 0x21],
      [2, () => 0x20],
      [1, () => random.below(256)],
    ]),
    random.weighted<number>([
      [4, () => 0x11],
      [3, () => 0x21],
      [1, () => 0x00],
      [1, () => 0x31],
      [1, () => random.below(256)],
    ]),
  ]);
  const addresses = [0x11, 0x12].includes(fixed[1] as number)
    ? 12
    : [0x21, 0x22].includes(fixed[1] as number)
      ? 36
      : fixed[1] === 0x31
        ? 216
        : 0;
  const body = random.bytes(
    random.weighted<number>([
      [6, () => addresses + random.below(40)],
      [1, () => random.below(addresses + 1)],
      [1, () => random.size(MAX_PROXY_HEADER_BYTES + 64)],
    ]),
  );
  const length = Buffer.alloc(2);
  length.writeUInt16BE(
    random.weighted<number>([
      [8, () => body.length],
      [1, () => random.below(65_536)],
      [1, () => Math.max(0, body.length - random.below(8))],
    ]),
  );
  const bytes = Buffer.concat([PROXY_V2_SIGNATURE, fixed, length, body, random.bytes(random.below(16))]);
  const flips = random.weighted<number>([
    [6, () => 0],
    [3, () => 1],
    [1, () => 1 + random.below(4)],
  ]);
  for (let flip = 0; flip < flips; flip++) bytes[random.below(bytes.length)] = random.below(256);
  return random.chance(0.05) ? random.bytes(random.below(40)) : bytes;
}

function same(a: ProxyParse, b: ProxyParse): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** [P-88] [P-89] The parse of any prefix agrees with the parse of the whole, whatever the cut. */
export function proxyHeaderParseIsPrefixStable(random: Random): void {
  const bytes = candidate(random);
  const whole = parseProxyHeader(bytes);
  if (
    whole.status === 'complete' &&
    (whole.header.length > bytes.length || whole.header.length > MAX_PROXY_HEADER_BYTES)
  ) {
    throw new PropertyViolation(`a header of ${whole.header.length} bytes from ${bytes.length}`, describeBytes(bytes));
  }
  let cut = 0;
  while (cut < bytes.length) {
    cut = Math.min(bytes.length, cut + 1 + random.below(24));
    const part = parseProxyHeader(bytes.subarray(0, cut));
    if (part.status === 'incomplete') {
      if (part.needed <= cut || part.needed > MAX_PROXY_HEADER_BYTES) {
        throw new PropertyViolation(`incomplete at ${cut} bytes, needing ${part.needed}`, describeBytes(bytes));
      }
      continue;
    }
    if (!same(part, whole)) {
      throw new PropertyViolation(
        `${cut} bytes gave ${JSON.stringify(part)}, all ${bytes.length} ${JSON.stringify(whole)}`,
        describeBytes(bytes),
      );
    }
  }
}
