/**
 * What answered, when it is not an imgcache server: the client reads the first bytes a peer sends, before they are
 * taken as a frame, and names what they look like (an HTTP response, an SSH banner, a line of text, or bytes no
 * imgcache server sends first), so that a wrong port is said as such rather than as "a frame declared 1213486160
 * body bytes". Pure: bytes in, a description out. (TLS records are told apart by tls-connect.ts.)
 */
import { CLIENT_FIRST_FRAME_MAX_BYTES, ImgcacheError, MessageType } from '../src/protocol/index.ts';

/** How many of the first bytes are kept to tell what answered. */
export const SNIFF_BYTES = 64;

/** The peer is not an imgcache server: it answered in another protocol, or with a first frame no server sends. */
export class NotImgcacheServerError extends ImgcacheError {
  /** what answered: 'HTTP', 'SSH', 'text', 'unknown' */
  readonly protocol: string;

  constructor(host: string, port: number, protocol: string, answered: string) {
    super('not-imgcache', `${host}:${port} answered ${answered}; this is not an imgcache server`);
    this.protocol = protocol;
  }
}

/**
 * [P-2] [P-3] [P-9] Whether the first bytes can begin the server's first frame: a length of at most 64 KiB and a type
 * of WELCOME or REJECT. Judged on as many of the header's bytes as have arrived.
 */
export function couldBeFirstFrame(head: Buffer): boolean {
  if (head.length >= 4 && head.readUInt32BE(0) > CLIENT_FIRST_FRAME_MAX_BYTES) return false;
  // before all four length bytes are in, the first ones already tell a length over 64 KiB (0x00010000)
  if (head.length >= 1 && head[0] !== 0) return false;
  if (head.length >= 2 && (head[1] ?? 0) > 1) return false;
  if (head.length >= 5 && head[4] !== MessageType.WELCOME && head[4] !== MessageType.REJECT) return false;
  return true;
}

/** What the first bytes look like, for a person. */
export function describeForeignBytes(head: Buffer): { protocol: string; answered: string } {
  const text = head.toString('latin1');
  if (text.startsWith('HTTP/')) return { protocol: 'HTTP', answered: 'HTTP' };
  if (text.startsWith('SSH-')) return { protocol: 'SSH', answered: 'with an SSH banner' };
  const [line = '', ...after] = text.split(/\r?\n/);
  if (line.length >= 3 && /^[\x20-\x7e]+$/.test(line)) {
    return { protocol: 'text', answered: `"${line}${after.length > 0 ? '' : '…'}"` };
  }
  const hex = [...head.subarray(0, 8)].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
  return { protocol: 'unknown', answered: `bytes no imgcache server sends first (${hex})` };
}

/** The error to give when the first bytes from host:port cannot be an imgcache server's, else null. */
export function notImgcacheServer(host: string, port: number, head: Buffer): NotImgcacheServerError | null {
  if (head.length === 0 || couldBeFirstFrame(head)) return null;
  const { protocol, answered } = describeForeignBytes(head);
  return new NotImgcacheServerError(host, port, protocol, answered);
}
