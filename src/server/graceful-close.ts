/**
 * [P-30] Graceful close: half-close (FIN) after the last frame, then read and discard whatever the client still
 * sends until it closes its side or the linger time passes, and only then release the socket. Destroying a socket
 * whose receive buffer holds unread bytes makes the kernel send a reset, which can wipe out the last frame before
 * the client reads it; this is what keeps a REJECT readable.
 */
import type { Duplex } from 'node:stream';

export function closeGracefully(stream: Duplex, lingerMs: number): void {
  if (stream.destroyed) return;
  const release = () => {
    clearTimeout(timer);
    stream.destroy();
  };
  const timer = setTimeout(release, lingerMs);
  timer.unref();
  stream.on('data', discard);
  stream.once('end', release);
  stream.once('close', () => clearTimeout(timer));
  stream.resume();
  stream.end();
}

function discard(): void {}
