/**
 * No byte from outside the folder, and never more than announced [P-39], over real sockets: a catalogued image is
 * swapped for a symbolic link to a file outside the folder and asked for at once (before the catalog has looked), an
 * image is appended to while it streams, and an image held in memory is swapped the same way. Each race is run in a
 * loop bounded in rounds and time; waits are for frames and catalog events, never for a fixed time.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, linkSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NewEvent } from '../db/events.ts';
import type { ServerConfig } from '../src/config.ts';
import { MessageType, parseJsonBody } from '../src/protocol/index.ts';
import { type LiveServer, nextChange, startLiveServer } from './helpers/live-images.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { within } from './helpers/within.ts';

/** What a client received for one get: the first answer frame's body, the DATA bytes, whether an END came. */
interface Answer {
  type: number;
  body: Record<string, unknown>;
  data: Buffer;
  end: boolean;
}

interface Folder extends LiveServer {
  /** a file outside the served folder, made of a marker no image holds */
  outside: string;
  marker: Buffer;
}

async function startWithOutsideFile(options: Partial<Omit<ServerConfig, 'codes'>>): Promise<Folder> {
  const live = await startLiveServer({ codes: [950], catalogRescanMs: 100, ...options });
  const marker = Buffer.from(`OUTSIDE-${randomUUID()}`);
  const outside = path.join(live.folder, 'outside.bin');
  writeFileSync(outside, Buffer.concat(Array.from({ length: 8000 }, () => marker)));
  return { ...live, outside, marker };
}

/** The next frame past the NOTICEs catalog-changed that a change of the folder sends between answers [P-70]. */
async function nextPastNotices(peer: RawConnection) {
  for (;;) {
    const frame = await peer.next();
    if (frame?.type !== MessageType.NOTICE || parseJsonBody(frame.body).kind !== 'catalog-changed') return frame;
  }
}

/** Reads one answer to a get: the REPLY (or ERROR), then for a stream its DATA up to the END or the close. */
async function readAnswer(peer: RawConnection): Promise<Answer> {
  const first = await nextPastNotices(peer);
  if (!first) throw new Error('the connection closed before the answer');
  const body = parseJsonBody(first.body);
  if (first.type !== MessageType.REPLY || body.stream !== true) {
    return { type: first.type, body, data: Buffer.alloc(0), end: false };
  }
  return { type: first.type, body, ...(await readStream(peer)) };
}

/** The DATA of a stream whose REPLY was read, up to its END or the close of the connection. */
async function readStream(peer: RawConnection): Promise<{ data: Buffer; end: boolean }> {
  const data: Buffer[] = [];
  for (let frame = await peer.next(); frame; frame = await peer.next()) {
    if (frame.type === MessageType.END) return { data: Buffer.concat(data), end: true };
    assert.is(frame.type, MessageType.DATA, 'nothing but DATA inside a stream [P-24]');
    data.push(frame.body);
  }
  return { data: Buffer.concat(data), end: false };
}

function closedWith(reason: string): (event: NewEvent) => boolean {
  return (event) => event.type === 'session-closed' && event.data.reason === reason;
}

/** [P-39] The history says the transfer did not end whole because the file changed, and how far it got. */
async function assertRecordedCut(folder: Folder, image: string, announced: number): Promise<void> {
  const recorded = await within(
    folder.test.waitForEvent((event) => event.type === 'transfer-incomplete' && event.data.reason === 'image-changed'),
    'the cut transfer recorded',
  );
  if (recorded.type !== 'transfer-incomplete') return;
  assert.equal([recorded.data.image, recorded.data.bytes], [image, announced]);
  assert.ok(recorded.data.bytesSent < announced, `${recorded.data.bytesSent} of ${announced} bytes sent`);
  await within(folder.test.waitForEvent(closedWith('image-changed')), 'the session closed with that reason');
}

/** Replaces `file` with a symbolic link to `target` in one rename; the original stays reachable as `aside`. */
function swapForLink(file: string, target: string, aside: string): void {
  linkSync(file, aside); // the same inode under another name, to put back later
  symlinkSync(target, `${file}.link`);
  renameSync(`${file}.link`, file);
}

/** Waits until `name` is in the catalog (it may be settling again after a swap the catalog saw). */
async function catalogued(folder: Folder, name: string): Promise<void> {
  const catalog = folder.test.server.catalog;
  if (!catalog.has(name)) await nextChange(catalog, name, 'added');
}

test('[P-39] an image streamed from disk, swapped for a link to an outside file and asked for at once: no byte of that file is sent', async () => {
  const folder = await startWithOutsideFile({ memoryBudgetBytes: 1 }); // every image is streamed from disk
  const name = 'mandelbrot.png';
  const file = path.join(folder.images, name);
  const original = readFileSync(file);
  const aside = path.join(folder.images, '..', 'aside.png');
  const started = performance.now();
  let raced = 0;
  try {
    for (let round = 0; round < 12 && raced < 3 && performance.now() - started < 10_000; round++) {
      await catalogued(folder, name);
      const peer = await RawConnection.admitted(folder.test.port);
      swapForLink(file, folder.outside, aside);
      peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: name });
      const answer = await within(readAnswer(peer), 'the answer to the get');
      renameSync(aside, file); // the catalogued file back in place
      peer.destroy();
      assert.not.ok(answer.data.includes(folder.marker), `round ${round}: bytes of the outside file were sent`);
      assert.ok(answer.data.equals(original.subarray(0, answer.data.length)), 'only bytes of the catalogued file');
      if (answer.type === MessageType.ERROR) {
        assert.is(answer.body.code, 'image-not-found', 'the catalog saw the link first');
        continue;
      }
      raced++; // asked before the catalog looked: the stream is cut, the END never sent
      assert.is(answer.body.bytes, original.length);
      assert.is(answer.end, false, 'no END for a file that is not the catalogued one');
      assert.ok(answer.data.length < original.length);
    }
    assert.ok(raced > 0, 'at least one get was answered before the catalog saw the link');
    await assertRecordedCut(folder, name, original.length);
  } finally {
    await folder.stop();
  }
});

test('[P-39] an image appended to while it streams from disk: never more than the announced bytes, and no END', async () => {
  const folder = await startWithOutsideFile({
    memoryBudgetBytes: 1,
    maxFrameBytes: 64 * 1024,
    drainTimeoutMs: 30_000,
  });
  const name = 'huge.png';
  const file = path.join(folder.images, name);
  // Far more than the socket buffers hold: the server is still reading the file when the client resumes.
  const original = randomBytes(48 * 1024 * 1024);
  try {
    const added = nextChange(folder.test.server.catalog, name, 'added');
    writeFileSync(file, original);
    await added;
    const peer = await RawConnection.admitted(folder.test.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: name });
    const reply = await peer.nextJson(MessageType.REPLY);
    assert.is(reply.bytes, original.length);
    const first = await peer.next();
    assert.is(first?.type, MessageType.DATA);
    peer.socket.pause();
    appendFileSync(file, Buffer.concat(Array.from({ length: 100 }, () => folder.marker)));
    peer.socket.resume();
    const rest = await within(readStream(peer), 'the rest of the stream, or its cut');
    const data = Buffer.concat([first?.body ?? Buffer.alloc(0), rest.data]);
    assert.ok(data.length <= original.length, `${data.length} bytes sent, ${original.length} announced`);
    assert.not.ok(data.includes(folder.marker), 'none of the appended bytes');
    assert.ok(data.equals(original.subarray(0, data.length)), 'only the catalogued bytes, in order');
    assert.is(rest.end, false, 'no END for a file that changed while it was sent');
    assert.ok(data.length < original.length, 'the stream was cut before its last bytes');
    await assertRecordedCut(folder, name, original.length);
  } finally {
    await folder.stop();
  }
});

test('[P-39] an image held in memory and swapped for a link: the catalogued bytes, whole, until the catalog drops it', async () => {
  const folder = await startWithOutsideFile({}); // the default budget holds every sample image
  const name = 'sunset.png';
  const file = path.join(folder.images, name);
  const original = readFileSync(file);
  const catalog = folder.test.server.catalog;
  try {
    assert.ok(catalog.get(name)?.content, 'held in memory');
    const removed = nextChange(catalog, name, 'removed');
    swapForLink(file, folder.outside, path.join(folder.images, '..', 'aside.png'));
    const peer = await RawConnection.admitted(folder.test.port);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: name });
    const answer = await within(readAnswer(peer), 'the answer to the get');
    assert.not.ok(answer.data.includes(folder.marker), 'no byte of the outside file');
    if (answer.type === MessageType.REPLY) {
      assert.ok(answer.data.equals(original), 'the held bytes are the catalogued ones');
      assert.ok(answer.end);
    } else assert.is(answer.body.code, 'image-not-found', 'the catalog saw the link first');
    await removed; // a link is not an image [P-38]
    peer.sendJson(MessageType.REQUEST, { id: 2, command: 'get', image: name });
    const refused = await nextPastNotices(peer);
    assert.is(refused?.type, MessageType.ERROR);
    assert.is(parseJsonBody(refused?.body ?? Buffer.from('{}')).code, 'image-not-found');
    peer.destroy();
    assert.equal(catalog.skipped(), [{ name, reason: 'symbolic-link' }]);
  } finally {
    await folder.stop();
  }
});

test.run();
