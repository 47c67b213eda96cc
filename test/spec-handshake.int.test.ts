/**
 * The handshake as docs/PROTOCOL.md settles it, over real sockets with raw frames: every fault before the WELCOME is
 * a REJECT, never an ERROR ([P-51]); the first frame's limit is 1024 bytes ([P-3]); the HELLO's `client` is checked
 * ([P-8]) and kept on record.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame, encodeFrameHeader, MessageType } from '../src/protocol/index.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

function frame(type: number, text: string): Buffer {
  return encodeFrame(type, Buffer.from(text, 'utf8'));
}

/** Sends `bytes` as the first thing on a new connection; returns the server's first frame and whether it closed. */
async function firstAnswer(port: number, bytes: Buffer): Promise<{ type: number; body: Record<string, unknown> }> {
  const peer = await RawConnection.open(port);
  peer.send(bytes);
  const first = await within(peer.next(), 'the first frame');
  if (!first) throw new Error('the server closed without a frame');
  const body = JSON.parse(first.body.toString('utf8')) as Record<string, unknown>;
  if (first.type === MessageType.REJECT) {
    assert.is(await within(peer.next(), 'the close after a REJECT'), null, '[P-14] nothing follows a REJECT');
  } else {
    peer.destroy();
  }
  return { type: first.type, body };
}

const BAD_FIRST_FRAMES: [string, Buffer][] = [
  ['a REQUEST', frame(MessageType.REQUEST, '{"id":1,"command":"list"}')],
  ['a frame of an unknown type', frame(0x7f, '{"versions":[1]}')],
  ['a REPLY (a type only the server sends)', frame(MessageType.REPLY, '{"versions":[1]}')],
  ['a HELLO that is not JSON', frame(MessageType.HELLO, 'hello')],
  ['a HELLO that is a JSON array', frame(MessageType.HELLO, '[1]')],
  ['a HELLO with an empty body', frame(MessageType.HELLO, '')],
  ['a HELLO that is not UTF-8', encodeFrame(MessageType.HELLO, Buffer.from([0x7b, 0x80, 0x7d]))],
  ['a HELLO naming versions twice', frame(MessageType.HELLO, '{"versions":[7],"versions":[1]}')],
  ['a HELLO whose versions hold 2^53+1', frame(MessageType.HELLO, '{"versions":[1,9007199254740993]}')],
  [
    'a HELLO whose client has 101 characters',
    frame(MessageType.HELLO, `{"versions":[1],"client":"${'a'.repeat(101)}"}`),
  ],
  ['a HELLO whose client is a number', frame(MessageType.HELLO, '{"versions":[1],"client":42}')],
  ['a HELLO whose client is null', frame(MessageType.HELLO, '{"versions":[1],"client":null}')],
  ['a HELLO whose client holds a newline', frame(MessageType.HELLO, '{"versions":[1],"client":"a\\nb"}')],
  ['a HELLO whose client holds an escape', frame(MessageType.HELLO, '{"versions":[1],"client":"\\u001b[2J"}')],
];

test('[P-51] every bad first frame is answered with REJECT bad-hello, never an ERROR, and closed', async () => {
  const running = await startTestServer({ capacity: 20 });
  try {
    for (const [name, bytes] of BAD_FIRST_FRAMES) {
      const answer = await firstAnswer(running.port, bytes);
      assert.equal([answer.type, answer.body.reason], [MessageType.REJECT, 'bad-hello'], name);
      assert.type(answer.body.message, 'string', name);
    }
    await within(
      running.waitForEvent(
        () => running.events.filter((event) => event.type === 'connection-rejected').length === BAD_FIRST_FRAMES.length,
      ),
      'every REJECT on record',
    );
  } finally {
    await running.stop();
  }
});

test('[P-8] [P-51] a client of 100 characters (code points, not UTF-16 units) is admitted, and on record', async () => {
  const running = await startTestServer();
  try {
    const clients = ['a'.repeat(100), '😀'.repeat(100), 'café/1.0 (日本語)'];
    for (const client of clients) {
      const answer = await firstAnswer(
        running.port,
        frame(MessageType.HELLO, JSON.stringify({ versions: [1], client })),
      );
      assert.is(answer.type, MessageType.WELCOME, client);
    }
    await within(
      running.waitForEvent(() => running.events.filter((event) => event.type === 'session-closed').length === 3),
      'the closes',
    );
    const admissions = readHistoryFile(running.database).filter((event) => event.type === 'session-admitted');
    assert.equal(
      admissions.map((event) => (event.data as { client?: string }).client),
      clients,
    );
  } finally {
    await running.stop();
  }
});

test('[P-3] [P-51] the first frame may be 1024 bytes; one declared over 1024 is REJECT frame-too-large at once', async () => {
  const running = await startTestServer();
  try {
    const hello = '{"versions":[1]}';
    const exactly = frame(MessageType.HELLO, hello + ' '.repeat(1024 - hello.length));
    assert.is(exactly.length, 5 + 1024);
    assert.is((await firstAnswer(running.port, exactly)).type, MessageType.WELCOME);
    // Only the header: the server answers before a byte of the body arrives.
    const over = await firstAnswer(running.port, encodeFrameHeader(MessageType.HELLO, 1025));
    assert.equal([over.type, over.body.reason], [MessageType.REJECT, 'frame-too-large']);
  } finally {
    await running.stop();
  }
});

test('[P-51] frames sent before the WELCOME are read as requests after it, under the 1024-byte limit', async () => {
  const running = await startTestServer();
  try {
    const peer = await RawConnection.open(running.port);
    peer.send(
      Buffer.concat([
        frame(MessageType.HELLO, '{"versions":[1]}'),
        frame(MessageType.REQUEST, '{"id":1,"command":"get","image":"missing.png"}'),
        frame(MessageType.REQUEST, `{"id":2,"command":"list","pad":"${'x'.repeat(1100)}"}`),
      ]),
    );
    await peer.nextJson(MessageType.WELCOME);
    const first = await peer.nextJson(MessageType.ERROR);
    assert.equal([first.id, first.code], [1, 'image-not-found']);
    const second = await peer.nextJson(MessageType.ERROR);
    assert.equal([second.id, second.code, second.fatal], [null, 'frame-too-large', true]);
    assert.is(await within(peer.next(), 'the close'), null);
  } finally {
    await running.stop();
  }
});
test.run();
