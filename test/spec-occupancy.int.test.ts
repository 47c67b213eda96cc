/**
 * [P-53] Every REJECT carries the occupancy it was decided at, and its record the same: `open` counts the sessions
 * admitted and not yet closed, never connections in their handshake nor the one turned away. Over real sockets, read
 * back from the history file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MessageType } from '../src/protocol/index.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

test('[P-53] every REJECT carries the occupancy it was decided at, the same as its record', async () => {
  const running = await startTestServer({ capacity: 3, handshakeTimeoutMs: 300 });
  try {
    const session = await RawConnection.admitted(running.port);
    // bad-hello: a REQUEST as the first frame
    const badHello = await RawConnection.open(running.port);
    badHello.sendJson(MessageType.REQUEST, { id: 1, command: 'list' });
    // unsupported-version
    const oldClient = await RawConnection.open(running.port);
    oldClient.hello([7]);
    // handshake-timeout: says nothing
    const silent = await RawConnection.open(running.port);
    const rejects = await Promise.all(
      [badHello, oldClient, silent].map((peer) => within(peer.nextJson(MessageType.REJECT), 'a REJECT')),
    );
    assert.equal(
      rejects.map((reject) => [reject.reason, reject.occupancy]),
      [
        ['bad-hello', { open: 1, capacity: 3 }],
        ['unsupported-version', { open: 1, capacity: 3 }],
        ['handshake-timeout', { open: 1, capacity: 3 }],
      ],
      'open counts admitted sessions, not the connection turned away',
    );
    session.sendJson(MessageType.REQUEST, { id: 1, command: 'exit' });
    await session.closed;
    const recorded = readHistoryFile(running.database)
      .filter((event) => event.type === 'connection-rejected')
      .map((event) => event.data as { reason: string; occupancy: unknown });
    assert.equal(
      recorded.map(({ reason, occupancy }) => [reason, occupancy]).sort(),
      rejects.map((reject) => [reject.reason, reject.occupancy]).sort(),
    );
  } finally {
    await running.stop();
  }
});

test('[P-53] server-full carries the occupancy: open equals capacity', async () => {
  const running = await startTestServer({ capacity: 1 });
  try {
    const session = await RawConnection.admitted(running.port);
    const full = await RawConnection.open(running.port);
    const reject = await within(full.nextJson(MessageType.REJECT), 'server-full');
    assert.equal(
      [reject.reason, reject.occupancy, reject.retryAfterMs],
      ['server-full', { open: 1, capacity: 1 }, 1000],
    );
    session.sendJson(MessageType.REQUEST, { id: 1, command: 'exit' });
    await session.closed;
  } finally {
    await running.stop();
  }
});

test.run();
