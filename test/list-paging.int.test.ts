/**
 * [P-3] [P-45] [P-47] No frame over the limit: a catalog of 10,000 images with 200-character names travels in `list`
 * pages that each fit within the announced maxFrameBytes, at the default and at the smallest limit, and the pages
 * together are the catalog. An ERROR that echoes a long request fits too.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { MessageType } from '../src/protocol/index.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { makeTemporaryFolder, startTestServer, type TestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const IMAGE_COUNT = 10_000;
const images = makeTemporaryFolder('imgcache-list-paging-');
const names: string[] = [];
for (let index = 0; index < IMAGE_COUNT; index++) {
  // 200 characters: 190 of padding that differs per image, a dash, five digits, ".png".
  const name = `${String.fromCharCode(97 + (index % 26)).repeat(190)}-${String(index).padStart(5, '0')}.png`;
  names.push(name);
  writeFileSync(path.join(images, name), Buffer.from([index & 0xff]));
}
names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** A server over the generated catalog with a free-request budget large enough for a thousand pages. */
function serverWith(maxFrameBytes: number): Promise<TestServer> {
  return startTestServer({
    cacheDir: images,
    maxFrameBytes,
    catalogRescanMs: 60_000,
    freeRequestBurst: 10_000,
    freeRequestsPerSecond: 10_000,
  });
}

/** Walks the pages over a bare socket, checking each frame against the WELCOME's limit; returns the names. */
async function walkPages(port: number): Promise<{ names: string[]; pages: number; largest: number }> {
  const raw = await RawConnection.open(port);
  try {
    raw.hello();
    const welcome = await raw.nextJson(MessageType.WELCOME);
    const limit = (welcome.limits as { maxFrameBytes: number }).maxFrameBytes;
    const seen: string[] = [];
    let after: string | undefined;
    let largest = 0;
    for (let page = 1; page <= IMAGE_COUNT + 1; page++) {
      raw.sendJson(MessageType.REQUEST, { id: page, command: 'list', ...(after === undefined ? {} : { after }) });
      const frame = await raw.next();
      if (!frame) throw new Error('the server closed the connection');
      assert.ok(frame.body.length <= limit, `page ${page}: ${frame.body.length} bytes > maxFrameBytes ${limit}`);
      largest = Math.max(largest, frame.body.length);
      assert.is(frame.type, MessageType.REPLY, frame.body.toString().slice(0, 200));
      const reply = JSON.parse(frame.body.toString('utf8'));
      seen.push(...reply.images.map((image: { name: string }) => image.name));
      if (!reply.more) {
        assert.is(reply.next, null, 'the last page has no next');
        return { names: seen, pages: page, largest };
      }
      assert.is(reply.next, seen.at(-1), 'next is the name of the last image given');
      after = reply.next;
    }
    throw new Error('the pages never ended');
  } finally {
    raw.destroy();
  }
}

test('[P-3] [P-45] 10,000 images with 200-character names at the default 1 MiB: every page within the limit, all names once', async () => {
  const server = await serverWith(1_048_576);
  try {
    const walked = await within(walkPages(server.port), 'the pages');
    assert.ok(walked.pages > 1, `the catalog needs several 1 MiB pages, got ${walked.pages}`);
    assert.equal(walked.names, names);
  } finally {
    await server.stop();
  }
});

test('[P-3] [P-45] the same catalog at the smallest maxFrameBytes (4096): every page within it, all names once', async () => {
  const server = await serverWith(4096);
  try {
    const walked = await within(walkPages(server.port), 'the pages', 60_000);
    assert.ok(walked.largest <= 4096);
    assert.equal(walked.names, names);
  } finally {
    await server.stop();
  }
});

test('[P-45] the client library follows next: list() returns the whole catalog at maxFrameBytes 4096', async () => {
  const server = await serverWith(4096);
  const client = await ImgcacheClient.connect({ port: server.port });
  try {
    const listed = await within(client.list(), 'list()', 60_000);
    assert.equal(
      listed.images.map((image) => image.name),
      names,
    );
    assert.is(listed.session.tier, 'bronze');
  } finally {
    client.close();
    await server.stop();
  }
});

test('[P-45] [P-48] list() waits out a rate-limited page, as its retryAfterMs says, and still returns the catalog', async () => {
  const server = await startTestServer({
    cacheDir: images,
    catalogRescanMs: 60_000,
    freeRequestBurst: 1,
    freeRequestsPerSecond: 4, // a page each 250 ms: each later page is refused at first, unless the machine crawls
  });
  const client = await ImgcacheClient.connect({ port: server.port });
  try {
    const listed = await within(client.list(), 'list()');
    assert.equal(
      listed.images.map((image) => image.name),
      names,
    );
    // [P-49] each rate-limited refusal is counted on the session's latest record
    const limited = server.events.filter(
      (event) => event.type === 'answer-repeated' && event.data.count === 'rateLimited',
    );
    assert.ok(limited.length >= 1, 'the pages after the first were rate-limited at first');
  } finally {
    client.close();
    await server.stop();
  }
});

test('[P-45] limit and after: a page of at most limit images, then the rest; bad values are bad-request, not fatal', async () => {
  const server = await serverWith(1_048_576);
  const raw = await RawConnection.open(server.port);
  try {
    raw.hello();
    await raw.nextJson(MessageType.WELCOME);
    raw.sendJson(MessageType.REQUEST, { id: 1, command: 'list', limit: 3 });
    const first = await raw.nextJson(MessageType.REPLY);
    assert.equal(
      (first.images as Array<{ name: string }>).map((image) => image.name),
      names.slice(0, 3),
    );
    assert.is(first.more, true);
    assert.is(first.next, names[2]);

    raw.sendJson(MessageType.REQUEST, { id: 2, command: 'list', after: names.at(-2), limit: 5 });
    const last = await raw.nextJson(MessageType.REPLY);
    assert.equal(
      (last.images as Array<{ name: string }>).map((image) => image.name),
      names.slice(-1),
    );
    assert.is(last.more, false);
    assert.is(last.next, null);

    // A name that is not in the catalog still has a place in its order.
    raw.sendJson(MessageType.REQUEST, { id: 3, command: 'list', after: 'zzzz', limit: 2 });
    const beyond = await raw.nextJson(MessageType.REPLY);
    assert.equal(
      (beyond.images as Array<{ name: string }>).map((image) => image.name),
      names.filter((name) => name > 'zzzz').slice(0, 2),
    );

    for (const [id, fields] of [
      [4, { limit: 0 }],
      [5, { limit: 1.5 }],
      [6, { limit: '3' }],
      [7, { after: 7 }],
    ] as const) {
      raw.sendJson(MessageType.REQUEST, { id, command: 'list', ...fields });
      const error = await raw.nextJson(MessageType.ERROR);
      assert.is(error.code, 'bad-request', JSON.stringify(fields));
      assert.is(error.fatal, false);
      assert.is(error.id, id);
    }
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test('[P-3] [P-47] an ERROR echoing the longest request that fits in maxRequestBytes stays within maxFrameBytes 4096', async () => {
  const server = await serverWith(4096);
  const raw = await RawConnection.open(server.port);
  try {
    raw.hello();
    await raw.nextJson(MessageType.WELCOME);
    // \u0001 takes 6 bytes in the request, 7 once echoed inside the message's JSON.stringify, escaped again.
    const command = '\u0001'.repeat(640);
    raw.sendJson(MessageType.REQUEST, { id: 1, command });
    raw.sendJson(MessageType.REQUEST, { id: 2, command: 'get', image: '\u0001'.repeat(660) });
    for (const id of [1, 2]) {
      const frame = await raw.next();
      assert.ok(frame, 'an answer');
      assert.is(frame?.type, MessageType.ERROR);
      assert.ok((frame?.body.length ?? 0) <= 4096, `ERROR ${id}: ${frame?.body.length} bytes`);
      assert.is(JSON.parse(frame?.body.toString() ?? '{}').id, id);
    }
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test.after(() => rmSync(images, { recursive: true, force: true }));

test.run();
