/**
 * [P-1] [P-69] The TLS adapter of the listener: every accepted TCP socket is wrapped in a server-side TLSSocket and
 * handed to the server's core like any other Duplex, so the framed protocol runs unchanged inside TLS. The TLS
 * handshake is part of the connection's handshake: the connection is counted among the handshakes in progress
 * ([P-43], no slot held) and the HELLO deadline ([P-11]) covers the TLS handshake too, so a handshake that stalls or
 * fails costs a socket for at most that long, and nothing else.
 *
 * The first byte decides: a TLS connection starts with a handshake record (0x16). A client that speaks the framed
 * protocol in plain text instead (its HELLO starts with a length, 0x00) is answered, in plain text, with a REJECT
 * `tls-required` [P-69] and closed: it learns why, rather than seeing the connection drop.
 */
import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { crowdingAddress } from '../../machines/admission.machine.ts';
import { ConfigError } from '../config.ts';
import { encodeJsonFrame } from '../protocol/frame.ts';
import { MessageType, type Occupancy, type Reject } from '../protocol/messages.ts';
import { closeGracefully } from './graceful-close.ts';
import { peerCloseReason } from './peer-close-reason.ts';
import { type Peer, socketPeer } from './proxy-header-reader.ts';

/** The TLS record type of a handshake message: the first byte of every TLS (and SSL 3) ClientHello. */
export const TLS_HANDSHAKE_RECORD = 0x16;

/** ms a plain-text client told `tls-required` has to read it before its socket is released [P-30] */
const REJECT_LINGER_MS = 1_000;

/** The certificate chain and private key files (PEM), read and checked once at start: a bad pair stops the start. */
export function loadTlsContext(certFile: string, keyFile: string): tls.SecureContext {
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(`${flag}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  };
  const cert = read(certFile, '--tls-cert');
  const key = read(keyFile, '--tls-key');
  try {
    // No renegotiation (TLS 1.2's; 1.3 has none): a client could otherwise renegotiate in a loop, thousands of
    // handshakes in seconds, each costing the server the CPU of a new one.
    const secureOptions = constants.SSL_OP_NO_RENEGOTIATION;
    return tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2', secureOptions });
  } catch (error) {
    // OpenSSL's words (e.g. "key values mismatch"), said with which files they are about.
    throw new ConfigError(`--tls-cert ${certFile} and --tls-key ${keyFile}: ${(error as Error).message}`);
  }
}

export interface TlsAdapterOptions {
  secureContext: tls.SecureContext;
  /** ms a connection may take to send its first byte [P-11] */
  firstByteTimeoutMs: number;
  /** [P-43] connections waiting for their first byte at once, in all and from one address; past it: closed */
  maxWaiting: number;
  maxWaitingPerAddress: number;
  /** hands the TLS stream to the server's core: `remote` is `address:port` of the TCP peer */
  handle(stream: tls.TLSSocket, remote: string, address: string): void;
  /** [P-53] the occupancy to put in a `tls-required` REJECT */
  occupancy(): Occupancy;
  /**
   * told of every connection that ends before its TLS began, once, so that it is on record like any other [P-54]:
   * rejected (plain text, or no byte within the deadline) or dropped (closed or reset by the peer)
   */
  onEndedBeforeTls(remote: string, outcome: BeforeTlsOutcome): void;
}

/** [P-54] [P-69] How a connection ended before its TLS handshake began. */
export type BeforeTlsOutcome =
  | { kind: 'rejected'; reason: 'tls-required' | 'handshake-timeout' | 'too-many-handshakes'; occupancy: Occupancy }
  | { kind: 'dropped'; reason: string };

/**
 * The `connection` listener of a TCP server whose clients speak TLS. `peer` is the client the socket stands for: the
 * socket's own peer, or the one a trusted balancer's PROXY header named [P-87].
 */
export function tlsConnectionHandler(options: TlsAdapterOptions): (socket: net.Socket, peer?: Peer) => void {
  // [P-43] Connections that have not sent a byte yet are bounded like handshakes: in all, and per address. Each
  // address's waiting connections, oldest first, each with the way to turn it away.
  let waiting = 0;
  const waitingFrom = new Map<string, Array<() => void>>();
  const countFrom = (address: string) => waitingFrom.get(address)?.length ?? 0;
  /** [P-43] With every place taken, the oldest of the most crowded address gives way, by the admission's rule. */
  const makeRoomFor = (address: string): boolean => {
    const queues = Array.from(waitingFrom.values(), (queue) => [queue, queue.length] as const);
    const crowded = crowdingAddress(queues, countFrom(address));
    crowded?.[0]?.();
    return crowded !== undefined;
  };
  return (socket, peer = socketPeer(socket)) => {
    const { address, remote } = peer;
    const addressFull = countFrom(address) >= options.maxWaitingPerAddress;
    if (addressFull || (waiting >= options.maxWaiting && !makeRoomFor(address))) {
      // No protocol to answer in yet (plain or TLS?): a close, on record.
      options.onEndedBeforeTls(remote, {
        kind: 'rejected',
        reason: 'too-many-handshakes',
        occupancy: options.occupancy(),
      });
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    waiting += 1;
    const displace = () => {
      // [P-43] its place goes to a newcomer from a less crowded address: a close, on record, as over the bound
      end({ kind: 'rejected', reason: 'too-many-handshakes', occupancy: options.occupancy() });
      socket.destroy();
    };
    const queue = waitingFrom.get(address) ?? [];
    queue.push(displace);
    waitingFrom.set(address, queue);
    let settled = false;
    const release = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      waiting -= 1;
      queue.splice(queue.indexOf(displace), 1);
      if (queue.length === 0) waitingFrom.delete(address);
    };
    const end = (outcome: BeforeTlsOutcome) => {
      if (settled) return;
      release();
      options.onEndedBeforeTls(remote, outcome);
    };
    const timer = setTimeout(() => {
      // [P-11] Nothing at all within the deadline: there is no protocol to answer in, only a close.
      end({ kind: 'rejected', reason: 'handshake-timeout', occupancy: options.occupancy() });
      socket.destroy();
    }, options.firstByteTimeoutMs);
    timer.unref();
    socket.on('error', (error: NodeJS.ErrnoException) => {
      end({ kind: 'dropped', reason: peerCloseReason(error) });
      socket.destroy();
    });
    socket.once('close', () => end({ kind: 'dropped', reason: 'client-closed' }));
    // The listener allows half-open sockets: a peer that closes its side before a byte gets no answer but a close.
    socket.once('end', () => {
      if (settled) return;
      end({ kind: 'dropped', reason: 'client-closed' });
      socket.destroy();
    });
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      if (chunk[0] !== TLS_HANDSHAKE_RECORD) {
        const occupancy = options.occupancy();
        end({ kind: 'rejected', reason: 'tls-required', occupancy });
        const reject: Reject = {
          reason: 'tls-required',
          message: 'this server speaks TLS only: connect with TLS (imgcache --tls)',
          occupancy,
        };
        socket.write(encodeJsonFrame(MessageType.REJECT, reject));
        closeGracefully(socket, REJECT_LINGER_MS);
        return;
      }
      // From here the connection is the core's, which bounds it and puts it on record however it ends.
      release();
      // The bytes read to look at the first one go back: the TLS layer takes what the socket holds before reading on.
      socket.unshift(chunk);
      const secure = new tls.TLSSocket(socket, {
        isServer: true,
        secureContext: options.secureContext,
        requestCert: false,
      });
      options.handle(secure, remote, address);
    });
  };
}
