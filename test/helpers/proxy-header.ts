/**
 * PROXY protocol v2 headers for tests, built byte by byte from the protocol's text (section 2.2), not by the parser
 * under test: what a balancer (HAProxy `send-proxy-v2`) puts before a client's first byte.
 */
import net from 'node:net';
import { PROXY_V2_SIGNATURE } from '../../src/server/proxy-protocol.ts';

export interface HeaderParts {
  /** 0x2 unless a test wants another version */
  version?: number;
  /** 'local', 'proxy', or a raw command nibble */
  command?: 'local' | 'proxy' | number;
  /** the family and transport byte; default TCP over the source's family (0x11 IPv4, 0x21 IPv6) */
  familyTransport?: number;
  source?: { address: string; port: number };
  destination?: { address: string; port: number };
  /** raw TLV bytes appended after the addresses */
  tlvs?: Buffer;
  /** the length field, when a test wants it to lie */
  declaredLength?: number;
}

/** The header's bytes. */
export function proxyV2Header(parts: HeaderParts = {}): Buffer {
  const source = parts.source ?? { address: '203.0.113.7', port: 40_123 };
  const destination = parts.destination ?? { address: '127.0.0.1', port: 7878 };
  const command =
    parts.command === 'local' ? 0x0 : parts.command === 'proxy' || parts.command === undefined ? 0x1 : parts.command;
  const family = net.isIP(source.address) === 6 ? 0x21 : 0x11;
  const familyTransport = parts.familyTransport ?? (parts.command === 'local' ? 0x00 : family);
  let addresses: Buffer;
  if (familyTransport >> 4 === 0x1) {
    addresses = Buffer.concat([ipv4Bytes(source.address), ipv4Bytes(destination.address), ports(source, destination)]);
  } else if (familyTransport >> 4 === 0x2) {
    addresses = Buffer.concat([ipv6Bytes(source.address), ipv6Bytes(destination.address), ports(source, destination)]);
  } else if (familyTransport >> 4 === 0x3) {
    addresses = Buffer.alloc(216);
  } else {
    addresses = Buffer.alloc(0);
  }
  const body = Buffer.concat([addresses, parts.tlvs ?? Buffer.alloc(0)]);
  const fixed = Buffer.alloc(4);
  fixed[0] = ((parts.version ?? 0x2) << 4) | command;
  fixed[1] = familyTransport;
  fixed.writeUInt16BE(parts.declaredLength ?? body.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, fixed, body]);
}

/** One TLV: type, 16-bit length, value. */
export function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

function ports(source: { port: number }, destination: { port: number }): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt16BE(source.port, 0);
  bytes.writeUInt16BE(destination.port, 2);
  return bytes;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** Full or `::`-compressed IPv6 text to its 16 bytes (no embedded IPv4 form). */
function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const bytes = Buffer.alloc(16);
  for (const [index, group] of groups.entries()) bytes.writeUInt16BE(Number.parseInt(group, 16), index * 2);
  return bytes;
}
