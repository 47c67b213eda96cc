/**
 * [P-87] [P-88] The PROXY protocol, version 2 (the binary header HAProxy sends with `send-proxy-v2`): a pure parser of
 * the header a balancer puts before the client's first byte, and the list of addresses trusted to send one. No
 * socket here: src/server/proxy-header-reader.ts reads the header off a connection with this.
 *
 * The header: a 12-byte signature, a version and command byte (version 2; LOCAL or PROXY), a family and transport
 * byte, a 16-bit length of what follows, then the addresses (TCP over IPv4: 12 bytes; over IPv6: 36) and TLVs, which
 * are skipped. LOCAL (a balancer's own connection, e.g. a health check) and PROXY with an unspecified or UNIX family
 * carry no client address: the connection keeps the socket's own.
 */
import net from 'node:net';

/** The 12 bytes every PROXY v2 header begins with. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** The fixed part: signature, version and command, family and transport, length. */
export const PROXY_V2_FIXED_BYTES = 16;

/** [P-88] The longest header accepted, TLVs included: a longer one is refused before it is buffered. */
export const MAX_PROXY_HEADER_BYTES = 4_096;

/** Why a header is refused: the last part of the recorded reason `proxy-header-invalid:<problem>`. */
export type ProxyHeaderProblem =
  /** the first bytes are not the signature (no header, a v1 text header, or the client's own bytes) */
  | 'no-signature'
  | 'bad-version'
  | 'bad-command'
  /** a PROXY command whose family or transport is not one of v2's (or is UDP: this server speaks TCP) */
  | 'bad-family'
  /** the declared length cannot hold the addresses of the declared family */
  | 'too-short'
  /** the declared length is over MAX_PROXY_HEADER_BYTES */
  | 'too-long';

export interface ProxyEndpoint {
  /** the address as Node writes a socket's (`192.0.2.1`, `2001:db8::1`) */
  address: string;
  port: number;
}

export type ProxyHeader =
  /** the balancer's own connection: the socket's addresses stand */
  | { command: 'local'; length: number }
  /** a relayed connection: `source` is the client's (null when the family carries no IP address) */
  | { command: 'proxy'; source: ProxyEndpoint | null; destination: ProxyEndpoint | null; length: number };

export type ProxyParse =
  /** more bytes are needed (at least `needed` in all) */
  | { status: 'incomplete'; needed: number }
  | { status: 'invalid'; problem: ProxyHeaderProblem }
  /** `header.length` bytes of the input are the header; the rest is the client's */
  | { status: 'complete'; header: ProxyHeader };

const COMMAND_LOCAL = 0x0;
const COMMAND_PROXY = 0x1;
const FAMILY_UNSPEC = 0x0;
const FAMILY_INET = 0x1;
const FAMILY_INET6 = 0x2;
const FAMILY_UNIX = 0x3;
const TRANSPORT_UNSPEC = 0x0;
const TRANSPORT_STREAM = 0x1;
/** bytes of the address block per family: source and destination addresses, then their ports (none for UNIX) */
const ADDRESS_BYTES: Record<number, number> = {
  [FAMILY_UNSPEC]: 0,
  [FAMILY_INET]: 12,
  [FAMILY_INET6]: 36,
  [FAMILY_UNIX]: 216,
};

/**
 * [P-88] Parses the PROXY v2 header at the start of `bytes`, as far as they go: a wrong byte is refused as soon as it
 * is seen (a client's HELLO fails at its first byte), a length over the bound before its body is awaited.
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyParse {
  const seen = Math.min(bytes.length, PROXY_V2_SIGNATURE.length);
  for (let index = 0; index < seen; index++) {
    if (bytes[index] !== PROXY_V2_SIGNATURE[index]) return { status: 'invalid', problem: 'no-signature' };
  }
  if (bytes.length <= PROXY_V2_SIGNATURE.length) return { status: 'incomplete', needed: PROXY_V2_FIXED_BYTES };
  const versionCommand = bytes[12] as number;
  if (versionCommand >> 4 !== 0x2) return { status: 'invalid', problem: 'bad-version' };
  const command = versionCommand & 0x0f;
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) return { status: 'invalid', problem: 'bad-command' };
  if (bytes.length < PROXY_V2_FIXED_BYTES) return { status: 'incomplete', needed: PROXY_V2_FIXED_BYTES };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = PROXY_V2_FIXED_BYTES + view.getUint16(14);
  if (length > MAX_PROXY_HEADER_BYTES) return { status: 'invalid', problem: 'too-long' };
  const family = (bytes[13] as number) >> 4;
  const transport = (bytes[13] as number) & 0x0f;
  // LOCAL: "the receiver must accept this connection as valid and must use the real connection endpoints and discard
  // the protocol block including the family" (the PROXY protocol's text, section 2.2).
  if (command === COMMAND_LOCAL) {
    if (bytes.length < length) return { status: 'incomplete', needed: length };
    return { status: 'complete', header: { command: 'local', length } };
  }
  const addressBytes = ADDRESS_BYTES[family];
  // The combinations of the protocol's text for TCP: UNSPEC with UNSPEC, or an address family over STREAM.
  const streamOrUnspec = family === FAMILY_UNSPEC ? transport === TRANSPORT_UNSPEC : transport === TRANSPORT_STREAM;
  if (addressBytes === undefined || !streamOrUnspec) return { status: 'invalid', problem: 'bad-family' };
  if (length < PROXY_V2_FIXED_BYTES + addressBytes) return { status: 'invalid', problem: 'too-short' };
  if (bytes.length < length) return { status: 'incomplete', needed: length };
  if (family !== FAMILY_INET && family !== FAMILY_INET6) {
    return { status: 'complete', header: { command: 'proxy', source: null, destination: null, length } };
  }
  const size = family === FAMILY_INET ? 4 : 16;
  const at = PROXY_V2_FIXED_BYTES;
  const ports = at + 2 * size;
  const address = (offset: number) =>
    size === 4 ? ipv4(bytes.subarray(offset, offset + 4)) : ipv6(bytes.subarray(offset, offset + 16));
  return {
    status: 'complete',
    header: {
      command: 'proxy',
      source: { address: address(at), port: view.getUint16(ports) },
      destination: { address: address(at + size), port: view.getUint16(ports + 2) },
      length,
    },
  };
}

function ipv4(bytes: Uint8Array): string {
  return Array.from(bytes).join('.');
}

/** RFC 5952's form: lower-case hex groups, the longest run of two or more zero groups as `::`; mapped IPv4 dotted. */
function ipv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let index = 0; index < 16; index += 2)
    groups.push(((bytes[index] as number) << 8) | (bytes[index + 1] as number));
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return `::ffff:${ipv4(bytes.subarray(12))}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** [P-87] A bad entry of `--proxy-protocol-from`. */
export class ProxySourceListError extends Error {}

/**
 * [P-87] The addresses a PROXY header is honoured from: `entries` are addresses (`10.0.0.5`, `::1`) or CIDR blocks
 * (`10.0.0.0/8`, `fd00::/8`). An IPv4 entry also matches the same address written IPv4-mapped (`::ffff:10.0.0.5`),
 * as a dual-stack listener reports it. Throws ProxySourceListError on an entry that is neither.
 */
export function proxySourceMatcher(entries: readonly string[]): (address: string) => boolean {
  const list = new net.BlockList();
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = net.isIP(address);
    const bits = family === 4 ? 32 : 128;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (family === 0 || extra !== undefined) throw new ProxySourceListError(`not an address or CIDR block: '${entry}'`);
    if (prefix === undefined) {
      list.addAddress(address, type);
      continue;
    }
    const length = /^[0-9]{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
    if (!(length <= bits)) throw new ProxySourceListError(`a prefix length from 0 to ${bits}, not '${entry}'`);
    list.addSubnet(address, length, type);
  }
  return (address) => {
    const family = net.isIP(address);
    return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** [P-87] Splits the comma list of `--proxy-protocol-from` and checks each entry; throws ProxySourceListError. */
export function parseProxySourceList(raw: string): string[] {
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  proxySourceMatcher(entries);
  return entries;
}
