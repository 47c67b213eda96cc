/**
 * [P-56] A client keeps a stream's content only when the content, the END and (for an image) the REPLY agree. A
 * scripted server over a real socket sends an image whose END disagrees with its REPLY, then one that agrees: the
 * client library refuses the first, keeps the connection in step, and takes the second.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { encodeFrame, encodeJsonFrame, FrameDecoder, IntegrityError, MessageType } from '../src/protocol/index.ts';

const QUOTA = { limit: 3, used: 0, remaining: 3 };
const WELCOME = {
  version: 1,
  server: 'scripted/1',
  session: { name: 'client-1', code: 108, tier: 'bronze', canReadUsage: false },
  quota: QUOTA,
  limits: { maxRequestBytes: 4096, maxFrameBytes: 1048576, idleTimeoutMs: 300000 },
};

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A server that answers the HELLO, then each get with `answers[n]`: what the REPLY announces, and the content. */
async function scriptedServer(
  answers: Array<{ announced: { bytes: number; sha256: string }; content: Buffer }>,
): Promise<net.Server> {
  const server = net.createServer((socket) => {
    const decoder = new FrameDecoder({ maxBodyBytes: 4096 });
    let next = 0;
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.type === MessageType.HELLO) socket.write(encodeJsonFrame(MessageType.WELCOME, WELCOME));
        if (frame.type !== MessageType.REQUEST) continue; // receipts and the rest
        const request = JSON.parse(frame.body.toString('utf8')) as { id: number; image: string };
        const answer = answers[next++];
        if (!answer) throw new Error('no answer scripted');
        const reply = { id: request.id, command: 'get', status: 'ok', image: request.image, stream: true };
        const modified = '2026-11-25T10:00:00.000Z';
        socket.write(encodeJsonFrame(MessageType.REPLY, { ...reply, ...answer.announced, modified, quota: QUOTA }));
        socket.write(encodeFrame(MessageType.DATA, answer.content));
        const end = { bytes: answer.content.length, sha256: sha256(answer.content) };
        socket.write(encodeJsonFrame(MessageType.END, end));
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return server;
}

test('[P-56] an END that disagrees with its REPLY is refused, and the connection goes on in step', async () => {
  const good = Buffer.from('the image the REPLY announced');
  const other = Buffer.from('another version of the image!');
  const server = await scriptedServer([
    { announced: { bytes: good.length, sha256: sha256(good) }, content: other }, // same length, other bytes
    { announced: { bytes: good.length, sha256: sha256(good) }, content: good },
  ]);
  const port = (server.address() as net.AddressInfo).port;
  const client = await ImgcacheClient.connect({ port });
  try {
    const kept: Buffer[] = [];
    const refused = await client.getInto('a.png', { write: (piece) => void kept.push(piece) }).then(
      () => null,
      (error: unknown) => error,
    );
    assert.instance(refused, IntegrityError, 'content and END agree, but not with the REPLY');
    const pieces: Buffer[] = [];
    const result = await client.getInto('a.png', { write: (piece) => void pieces.push(piece) });
    assert.is(result.end.sha256, sha256(good));
    assert.ok(Buffer.concat(pieces).equals(good), 'the next answer is read in step');
  } finally {
    client.close();
    server.close();
  }
});

test.run();
