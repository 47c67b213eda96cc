/**
 * [P-31] [P-54] [P-89] How a socket error is recorded as the reason a connection ended: the same words whether it came
 * before the PROXY header, before the TLS handshake, or during a session.
 */
export function peerCloseReason(error: NodeJS.ErrnoException): string {
  if (error.code === 'ECONNRESET') return 'connection-reset';
  if (error.code === 'EPIPE') return 'client-closed'; // it closed while we were still writing
  return `socket-error:${error.code ?? 'unknown'}`;
}
