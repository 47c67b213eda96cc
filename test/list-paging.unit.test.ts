/** [P-45] [P-47] The pure list page: fits the frame, follows the catalog order, says what comes next. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ImageInfo } from '../src/protocol/messages.ts';
import { firstIndexAfter, listPage } from '../src/server/list-page.ts';

const session = { name: 'client-1', code: 108, tier: 'bronze', canReadUsage: false };
const quota = { limit: 3, used: 0, remaining: 3 };
const image = (name: string): ImageInfo => ({
  name,
  bytes: 1,
  modified: '2026-11-25T10:00:00.000Z',
  sha256: '0'.repeat(64),
});
// Code point order: 'z' (U+007A) < 'é' (U+00E9) < '😀' (U+1F600), though UTF-16 puts '😀' before 'ｚ' (U+FF5A).
const images = ['a.png', 'b.png', 'z.png', 'é.png', 'ｚ.png', '😀.png'].map(image);

test('[P-45] after: the first image after a name, present or not, in code point order', () => {
  assert.is(firstIndexAfter(images, undefined), 0);
  assert.is(firstIndexAfter(images, 'a.png'), 1);
  assert.is(firstIndexAfter(images, 'a'), 0);
  assert.is(firstIndexAfter(images, 'ｚ.png'), 5);
  assert.is(firstIndexAfter(images, '😀.png'), 6);
});

test('[P-45] [P-47] every page fits maxFrameBytes exactly or under; walking next gives every image once', () => {
  const many = Array.from({ length: 500 }, (_, index) => image(`${'é'.repeat(120)}${String(index).padStart(4, '0')}`));
  for (const maxFrameBytes of [4096, 5000, 65_536]) {
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const result = listPage({ requestId: 4294967295, after }, { images: many, session, quota, maxFrameBytes });
      assert.ok(
        Buffer.byteLength(result.json) <= maxFrameBytes,
        `${Buffer.byteLength(result.json)} > ${maxFrameBytes}`,
      );
      const body = JSON.parse(result.json);
      seen.push(...body.images.map((entry: ImageInfo) => entry.name));
      assert.is(body.more, result.more);
      if (!body.more) break;
      after = body.next;
    }
    assert.equal(
      seen,
      many.map((entry) => entry.name),
    );
  }
});

test('[P-45] limit, and an empty catalog', () => {
  const page = JSON.parse(listPage({ requestId: 1, limit: 2 }, { images, session, quota, maxFrameBytes: 4096 }).json);
  assert.equal(
    page.images.map((entry: ImageInfo) => entry.name),
    ['a.png', 'b.png'],
  );
  assert.is(page.more, true);
  assert.is(page.next, 'b.png');
  const empty = JSON.parse(listPage({ requestId: 1 }, { images: [], session, quota, maxFrameBytes: 4096 }).json);
  assert.equal(empty.images, []);
  assert.is(empty.more, false);
  assert.is(empty.next, null);
});

test.run();
