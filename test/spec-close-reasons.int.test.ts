/**
 * [P-57] The close reasons the server records are the ones the spec lists, spelled the same. Sessions end in each way
 * a client can make them end, over real sockets; each recorded reason, read back from the history file, is the one
 * expected and a row of the spec's table.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PACKAGE_ROOT } from '../src/config.ts';
import { encodeFrame, encodeFrameHeader, MessageType } from '../src/protocol/index.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** The reasons in the first column of [P-57]'s table. */
function specifiedCloseReasons(): Set<string> {
  const spec = readFileSync(path.join(PACKAGE_ROOT, 'docs', 'PROTOCOL.md'), 'utf8');
  const section = spec.slice(spec.indexOf('**[P-57]**'));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| reason')));
  const reasons = [...table.matchAll(/^ {2}\| `([^`]+)`/gm)].map((match) => match[1] ?? '');
  return new Set(reasons);
}

function request(body: object): Buffer {
  return encodeFrame(MessageType.REQUEST, Buffer.from(JSON.stringify(body)));
}

/** Ways to end a session, each with the reason it must be recorded with. */
const ENDINGS: Array<[string, (peer: RawConnection) => void]> = [
  ['client-exit', (peer) => peer.send(request({ id: 1, command: 'exit' }))],
  ['client-closed', (peer) => peer.socket.end()],
  ['connection-reset', (peer) => peer.socket.resetAndDestroy()],
  ['malformed-message', (peer) => peer.send(encodeFrame(MessageType.REQUEST, Buffer.from('{"id":1')))],
  ['unexpected-message', (peer) => peer.send(encodeFrame(MessageType.HELLO, Buffer.from('{"versions":[1]}')))],
  ['frame-too-large', (peer) => peer.send(encodeFrameHeader(MessageType.REQUEST, 1_000_000))],
  [
    'too-many-requests',
    (peer) =>
      peer.send(
        Buffer.concat(Array.from({ length: 70 }, (_, id) => request({ id, command: 'get', image: 'no-such.png' }))),
      ),
  ],
  ['idle-timeout', () => {}],
];

test('[P-57] each way a session ends is recorded with the reason the spec lists for it', async () => {
  const specified = specifiedCloseReasons();
  assert.ok(specified.has('client-exit') && specified.has('server-restart'), 'the table was read');
  const running = await startTestServer({ capacity: 20, idleTimeoutMs: 300 });
  try {
    const sessions: Array<[string, number | null]> = [];
    for (const [expected, end] of ENDINGS) {
      const before = running.events.length;
      const peer = await RawConnection.admitted(running.port);
      const admission = running.events.slice(before).find((event) => event.type === 'session-admitted');
      sessions.push([expected, admission?.session ?? null]);
      end(peer);
      await within(
        running.waitForEvent((event) => event.type === 'session-closed' && event.session === admission?.session),
        `the close of the session ended by ${expected}`,
      );
      peer.destroy();
    }
    const closes = new Map(
      readHistoryFile(running.database)
        .filter((event) => event.type === 'session-closed')
        .map((event) => [event.session, (event.data as { reason: string }).reason]),
    );
    for (const [expected, session] of sessions) {
      assert.is(closes.get(session), expected);
      assert.ok(specified.has(expected), `${expected} is in the spec's table`);
    }
  } finally {
    await running.stop();
  }
});

test('[P-57] a session open when the server stops is closed as server-shutdown, a listed reason', async () => {
  const folder = makeTemporaryFolder();
  try {
    const running = await startTestServer({ folder });
    const peer = await RawConnection.admitted(running.port);
    await running.stop();
    const closes = readHistoryFile(running.database).filter((event) => event.type === 'session-closed');
    assert.equal(
      closes.map((event) => event.data),
      [{ reason: 'server-shutdown' }],
    );
    assert.ok(specifiedCloseReasons().has('server-shutdown'));
    peer.destroy();
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
