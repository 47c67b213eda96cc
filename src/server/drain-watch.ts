/**
 * Outbound backpressure with a deadline. When the socket's buffer is full, wait for 'drain'; but a client that
 * stops reading (its receive window full) would hold its slot and its buffered answer forever, so a reader that
 * takes none of the pending bytes for `stallMs` is declared stalled. A slow reader that keeps making progress is
 * not cut off: the deadline restarts whenever the amount still buffered goes down.
 */
import type { Duplex } from 'node:stream';

export function waitForDrain(stream: Duplex, stallMs: number, onDrained: () => void, onStalled: () => void): void {
  if (stream.destroyed) return;
  let lastPending = stream.writableLength;
  const check = () => {
    const pending = stream.writableLength;
    if (pending < lastPending) {
      lastPending = pending;
      return;
    }
    finish();
    onStalled();
  };
  const timer = setInterval(check, stallMs);
  const finish = () => {
    clearInterval(timer);
    stream.off('drain', drained);
    stream.off('close', finish);
  };
  const drained = () => {
    finish();
    onDrained();
  };
  stream.once('drain', drained);
  stream.once('close', finish);
}
