/** Conditional get in the codec and the glue's pure helpers [P-34] [P-35]: no sockets. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ImgcacheError, parseReply, parseRequest } from '../src/protocol/index.ts';
import { holdsCurrentImage, notModifiedReply } from '../src/server/conditional-get.ts';
import { type CatalogEntry, catalogEntry } from '../src/server/image-catalog.ts';

const SHA = 'ab'.repeat(32);
const QUOTA = { limit: 3, used: 1, remaining: 2 };
const SIGNATURE = { bytes: 18214, mtimeMs: Date.UTC(2026, 10, 25, 10), dev: 1, ino: 1 };
const ENTRY: CatalogEntry = catalogEntry('/nowhere/sunset.png', 'sunset.png', SIGNATURE, SHA);

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return (error as ImgcacheError).code;
  }
  return undefined;
}

test('[P-34] a get with have keeps it; without, it has none', () => {
  assert.equal(parseRequest({ id: 1, command: 'get', image: 'sunset.png', have: SHA }), {
    id: 1,
    command: 'get',
    image: 'sunset.png',
    have: SHA,
  });
  assert.equal(parseRequest({ id: 1, command: 'get', image: 'sunset.png' }), {
    id: 1,
    command: 'get',
    image: 'sunset.png',
  });
  assert.equal(parseRequest({ id: 1, command: 'list', have: 'whatever' }), { id: 1, command: 'list' }, '[P-6]');
});

test('[P-34] a have that is not 64 lowercase hex digits is bad-request with the request id', () => {
  for (const have of [SHA.toUpperCase(), SHA.slice(2), `${SHA}00`, `${SHA.slice(1)}g`, 7, null, [], '']) {
    let thrown: unknown;
    try {
      parseRequest({ id: 5, command: 'get', image: 'sunset.png', have });
    } catch (error) {
      thrown = error;
    }
    assert.is((thrown as ImgcacheError | undefined)?.code, 'bad-request', JSON.stringify(have));
    assert.is((thrown as { requestId?: number }).requestId, 5);
  }
});

test('[P-35] the not-modified REPLY as the server builds it, and as the client parses it', () => {
  const reply = notModifiedReply(8, ENTRY, QUOTA);
  assert.equal(reply, {
    id: 8,
    command: 'get',
    status: 'not-modified',
    image: 'sunset.png',
    bytes: 18214,
    sha256: SHA,
    modified: '2026-11-25T10:00:00.000Z',
    quota: QUOTA,
  });
  assert.equal(parseReply(JSON.parse(JSON.stringify(reply))), reply);
  assert.equal(parseReply({ ...reply, etag: 'x' }), reply, '[P-6] unknown fields are ignored');
});

test('[P-35] a not-modified REPLY missing a field, or with a status other commands do not have, is malformed', () => {
  const reply = notModifiedReply(8, ENTRY, QUOTA);
  assert.is(
    codeOf(() => parseReply({ ...reply, sha256: 'short' })),
    'malformed-message',
  );
  assert.is(
    codeOf(() => parseReply({ ...reply, quota: undefined })),
    'malformed-message',
  );
  assert.is(
    codeOf(() => parseReply({ id: 1, command: 'list', status: 'not-modified', quota: QUOTA })),
    'malformed-message',
  );
});

test('[P-34] holdsCurrentImage: a get whose have is the entry hash, and nothing else', () => {
  assert.ok(holdsCurrentImage({ id: 1, command: 'get', image: 'sunset.png', have: SHA }, ENTRY));
  assert.not.ok(holdsCurrentImage({ id: 1, command: 'get', image: 'sunset.png', have: 'cd'.repeat(32) }, ENTRY));
  assert.not.ok(holdsCurrentImage({ id: 1, command: 'get', image: 'sunset.png' }, ENTRY));
  assert.not.ok(holdsCurrentImage({ id: 1, command: 'get', image: 'sunset.png', have: SHA }, undefined));
  assert.not.ok(holdsCurrentImage({ id: 1, command: 'list' }, ENTRY));
});

test.run();
