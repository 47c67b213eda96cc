import { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DrainWaiter } from '../src/server/drain-watch.ts';
import { within } from './helpers/within.ts';

/** A stream whose writes are taken only when the test says so (`take()`), as a socket whose reader pauses. */
function heldStream(): { stream: Duplex; take: () => void } {
  let held: Array<() => void> = [];
  const stream = new Duplex({
    highWaterMark: 16,
    read() {},
    write(_chunk, _encoding, callback) {
      held.push(callback);
    },
  });
  const take = () => {
    const callbacks = held;
    held = [];
    for (const callback of callbacks) callback();
  };
  return { stream, take };
}

test('[P-41] a reader that takes none of the pending bytes is declared stalled once the deadline passes', async () => {
  const { stream } = heldStream();
  const waiter = new DrainWaiter(stream, 40);
  assert.not.ok(stream.write(Buffer.alloc(64)), 'the buffer is full');
  const started = performance.now();
  await within(
    new Promise<void>((resolve) => waiter.wait(() => assert.unreachable('it never drained'), resolve)),
    'declared stalled',
    5_000,
  );
  assert.ok(performance.now() - started >= 40, 'not before the deadline');
  stream.destroy();
});

test('[P-41] waits in a row end at their drains, on one timer for the connection, not one per wait', async () => {
  const { stream, take } = heldStream();
  const waiter = new DrainWaiter(stream, 60_000);
  const realSetInterval = globalThis.setInterval;
  let intervals = 0;
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    intervals++;
    return realSetInterval(...args);
  }) as typeof setInterval;
  try {
    for (let answer = 1; answer <= 5; answer++) {
      assert.not.ok(stream.write(Buffer.alloc(64)), 'the buffer is full');
      const drained = new Promise<void>((resolve) => waiter.wait(resolve, () => assert.unreachable('stalled')));
      take();
      await within(drained, `answer ${answer} drained`, 5_000);
    }
  } finally {
    globalThis.setInterval = realSetInterval;
    stream.destroy();
  }
  assert.is(intervals, 1, 'one timer armed for the five waits');
});

test.run();
