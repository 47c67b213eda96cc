/**
 * The history says what the client sent and what the server answered: refused requests keep their command and
 * image, refused names are labelled by what they are ([P-52]), and a connection that says nothing is on record
 * too ([P-54]). Each test reads the real history file, not the server's in-memory feed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MessageType } from '../src/protocol/index.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { startTestServer, type TestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** Sends the requests one at a time and returns each answer (an ERROR here). */
async function ask(peer: RawConnection, requests: object[]): Promise<Record<string, unknown>[]> {
  const answers: Record<string, unknown>[] = [];
  for (const request of requests) {
    peer.sendJson(MessageType.REQUEST, request);
    answers.push(await within(peer.nextJson(MessageType.ERROR), JSON.stringify(request)));
  }
  return answers;
}

async function closedOnRecord(running: TestServer, session: number | null | undefined): Promise<void> {
  await within(
    running.waitForEvent((event) => event.type === 'session-closed' && event.session === session),
    'the session close on record',
  );
}

test('[P-52] a refused get is recorded with its command and image, as far as they could be read', async () => {
  const running = await startTestServer();
  try {
    const peer = await RawConnection.admitted(running.port);
    const answers = await ask(peer, [
      { id: 1, command: 'get', image: 'sunset.png', have: 'NOT-A-HASH' },
      { id: 'two', command: 'get', image: 'mandelbrot.png' },
      { id: 3, command: 'get', image: 7 },
      { id: 4, command: 'fetch', image: 'x.png' },
      { id: 5, command: ['get'] },
    ]);
    assert.equal(
      answers.map((answer) => [answer.id, answer.code]),
      [
        [1, 'bad-request'],
        [null, 'bad-request'],
        [3, 'bad-request'],
        [4, 'unknown-command'],
        [5, 'bad-request'],
      ],
    );
    peer.sendJson(MessageType.REQUEST, { id: 6, command: 'exit' });
    await peer.closed;
    const admittedEvent = running.events.find((event) => event.type === 'session-admitted');
    await closedOnRecord(running, admittedEvent?.session);
    const refusals = readHistoryFile(running.database)
      .filter((event) => event.type === 'request-refused')
      .map((event) => event.data);
    assert.equal(
      refusals.map(({ requestId, command, code, image }) => ({ requestId, command, code, image })),
      [
        { requestId: 1, command: 'get', code: 'bad-request', image: 'sunset.png' },
        { requestId: null, command: 'get', code: 'bad-request', image: 'mandelbrot.png' },
        { requestId: 3, command: 'get', code: 'bad-request', image: undefined },
        { requestId: 4, command: 'fetch', code: 'unknown-command', image: undefined },
        { requestId: 5, command: 'unknown', code: 'bad-request', image: undefined },
      ],
    );
  } finally {
    await running.stop();
  }
});

test('[P-52] a name longer than any file name is labelled too-long, whatever else it holds', async () => {
  const running = await startTestServer({ codes: [950] });
  try {
    const peer = await RawConnection.admitted(running.port);
    const names = [
      '../'.repeat(100), // 300 bytes, and a traversal
      `/${'a'.repeat(300)}`, // absolute, and long
      `${'a'.repeat(300)}\0`, // a NUL, and long
      '日'.repeat(86), // 86 characters, 258 bytes of UTF-8
      '日'.repeat(85), // 255 bytes: could be a file name
      '../short',
    ];
    const answers = await ask(
      peer,
      names.map((image, index) => ({ id: index, command: 'get', image })),
    );
    assert.ok(answers.every((answer) => answer.code === 'image-not-found' && answer.fatal === false));
    peer.sendJson(MessageType.REQUEST, { id: 99, command: 'exit' });
    await peer.closed;
    await closedOnRecord(running, running.events.find((event) => event.type === 'session-admitted')?.session);
    const labels = readHistoryFile(running.database)
      .filter((event) => event.type === 'request-refused')
      .map((event) => (event.data as { suspicious?: string }).suspicious);
    assert.equal(labels, ['too-long', 'too-long', 'too-long', 'too-long', undefined, 'path-traversal']);
  } finally {
    await running.stop();
  }
});

test('[P-52] a long name or command is cut to 256 code points, never inside a surrogate pair', async () => {
  const running = await startTestServer({ codes: [950] });
  try {
    const peer = await RawConnection.admitted(running.port);
    // 'a' then emoji (two UTF-16 units each): 256 units would end in the middle of the 128th emoji.
    const name = `a${'\u{1F600}'.repeat(300)}`;
    const command = `x${'\u{1F600}'.repeat(300)}`;
    const answers = await ask(peer, [
      { id: 1, command: 'get', image: name },
      { id: 2, command },
    ]);
    assert.equal(
      answers.map((answer) => answer.code),
      ['image-not-found', 'unknown-command'],
    );
    peer.sendJson(MessageType.REQUEST, { id: 99, command: 'exit' });
    await peer.closed;
    await closedOnRecord(running, running.events.find((event) => event.type === 'session-admitted')?.session);
    const refusals = readHistoryFile(running.database)
      .filter((event) => event.type === 'request-refused')
      .map((event) => event.data as { command: string; image?: string; imageLength?: number });
    const loneSurrogate = /\p{Surrogate}/u;
    const recordedName = refusals[0]?.image ?? '';
    assert.equal(
      [Array.from(recordedName).length, refusals[0]?.imageLength, loneSurrogate.test(recordedName)],
      [256, 301, false],
      'the name: 256 code points, its full length in code points beside it',
    );
    assert.is(recordedName, Array.from(name).slice(0, 256).join(''));
    const recordedCommand = refusals[1]?.command ?? '';
    assert.equal(
      [Array.from(recordedCommand).length, loneSurrogate.test(recordedCommand)],
      [256, false],
      'the command: 256 code points',
    );
  } finally {
    await running.stop();
  }
});

test('[P-54] a connection that closes without a word is on record as connection-dropped', async () => {
  const running = await startTestServer();
  try {
    const peer = await RawConnection.open(running.port);
    const address = peer.socket.address() as { port: number };
    peer.socket.end();
    await within(
      running.waitForEvent((event) => event.type === 'connection-dropped'),
      'the dropped connection on record',
    );
    const dropped = readHistoryFile(running.database).filter((event) => event.type === 'connection-dropped');
    assert.is(dropped.length, 1);
    assert.equal(dropped[0]?.data, { reason: 'client-closed', remote: `127.0.0.1:${address.port}` });
  } finally {
    await running.stop();
  }
});

test.run();
