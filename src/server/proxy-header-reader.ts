/**
 * [P-87] [P-88] [P-89] The PROXY v2 adapter of the listener: a connection from a trusted address (the balancer) must
 * begin with a PROXY v2 header; it is read off the socket here, before anything else looks at a byte (the TLS sniff
 * too: a balancer sends the header before the client's TLS bytes), and the connection goes on with the client's
 * address and port from the header. A connection from any other address goes on untouched, its bytes unread.
 */
import type net from 'node:net';
import { peerCloseReason } from './peer-close-reason.ts';
import { parseProxyHeader } from './proxy-protocol.ts';

/** Who is at the other end: `remote` is `address:port`, as recorded; `address` is the one per-address limits count. */
export interface Peer {
  remote: string;
  address: string;
}

export interface ProxyHeaderReaderOptions {
  /** [P-87] whether the socket's peer address may (and so must) send a header */
  trusted(address: string): boolean;
  /** ms the header may take to arrive in full [P-88] */
  timeoutMs: number;
  /** the connection, with the peer it stands for, handed on with its bytes after the header unread */
  next(socket: net.Socket, peer: Peer): void;
  /** [P-89] told once of a connection closed before its header was whole and valid, so that it is on record */
  onDropped(remote: string, reason: string): void;
}

/** The socket's own peer. */
export function socketPeer(socket: net.Socket): Peer {
  const address = socket.remoteAddress ?? '';
  return { remote: `${address}:${socket.remotePort}`, address };
}

/** The `connection` listener that reads PROXY headers from trusted addresses, then calls `next`. */
export function proxyHeaderReader(options: ProxyHeaderReaderOptions): (socket: net.Socket) => void {
  return (socket) => {
    const peer = socketPeer(socket);
    if (!options.trusted(peer.address)) {
      options.next(socket, peer);
      return;
    }
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const stop = () => {
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
    };
    const drop = (reason: string) => {
      if (settled) return;
      stop();
      socket.on('error', () => {});
      socket.destroy();
      options.onDropped(peer.remote, reason);
    };
    // [P-89] Closed before its header was whole: a peer that sent nothing closed as any client can; one cut
    // mid-header did not send a header.
    const closedReason = () => (received.length === 0 ? 'client-closed' : 'proxy-header-truncated');
    const onEnd = () => drop(closedReason());
    const onClose = () => drop(closedReason());
    const onError = (error: NodeJS.ErrnoException) => drop(peerCloseReason(error));
    const onData = (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const parsed = parseProxyHeader(received);
      if (parsed.status === 'incomplete') return;
      if (parsed.status === 'invalid') {
        drop(parsed.problem === 'no-signature' ? 'proxy-header-missing' : `proxy-header-invalid:${parsed.problem}`);
        return;
      }
      stop();
      socket.pause();
      const rest = received.subarray(parsed.header.length);
      if (rest.length > 0) socket.unshift(rest);
      const { header } = parsed;
      const source = header.command === 'proxy' ? header.source : null;
      // Flowing again from the next tick: `next` adds its readers before a byte moves.
      socket.resume();
      options.next(socket, source ? { remote: `${source.address}:${source.port}`, address: source.address } : peer);
    };
    const timer = setTimeout(() => drop('proxy-header-timeout'), options.timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
  };
}
