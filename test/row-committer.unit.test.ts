/**
 * The statements of a commit (db/row-committer.ts): a group of rows is stored whole and in order, or not at all,
 * whether it is one multi-row INSERT or a transaction of several statements; answer-repeated rows [P-49] count on
 * the right row, even one inserted earlier in the same group.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Database, openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import { type EventRow, MAX_ROWS_PER_INSERT, rowCommitter } from '../db/row-committer.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

let folder = '';
let db: Database;

test.before.each(() => {
  folder = makeTemporaryFolder('imgcache-row-committer-');
  db = openDatabase(path.join(folder, 'history.sqlite'));
});

test.after.each(() => {
  db.close();
  rmSync(folder, { recursive: true, force: true });
});

function served(session: number, requestId: number): EventRow {
  return [1_000 + requestId, session, 'image-served', JSON.stringify({ requestId, image: 'a.png' })];
}

function repeated(session: number, count: 'repeats' | 'rateLimited', requestId: number): EventRow {
  return [2_000 + requestId, session, 'answer-repeated', JSON.stringify({ requestId, count })];
}

test('a group larger than one INSERT takes is stored whole, in order, at consecutive positions', () => {
  const commit = rowCommitter(db);
  commit([served(9, 0)]);
  const rows = Array.from({ length: 2 * MAX_ROWS_PER_INSERT + 3 }, (_, index) => served(1 + (index % 5), index + 1));
  commit(rows);
  const events = readEvents(db);
  assert.is(events.length, rows.length + 1);
  events.forEach((event, index) => {
    assert.is(event.position, index + 1);
    assert.is((event.data as { requestId: number }).requestId, index);
  });
});

test('[P-49] answer-repeated rows count on their session’s previous row, inserted in the same group or before', () => {
  const commit = rowCommitter(db);
  commit([served(1, 1)]);
  commit([
    repeated(1, 'repeats', 2),
    served(2, 3),
    served(1, 4),
    repeated(1, 'repeats', 5),
    repeated(2, 'rateLimited', 6),
    served(2, 7),
  ]);
  const events = readEvents(db).map((event) => [event.session, event.data]);
  assert.equal(events, [
    [1, { requestId: 1, image: 'a.png', repeats: 1, lastAt: 2_002, lastRequestId: 2 }],
    [2, { requestId: 3, image: 'a.png', rateLimited: 1, lastRateLimitedAt: 2_006 }],
    [1, { requestId: 4, image: 'a.png', repeats: 1, lastAt: 2_005, lastRequestId: 5 }],
    [2, { requestId: 7, image: 'a.png' }],
  ]);
});

for (const size of [3, MAX_ROWS_PER_INSERT + 3]) {
  test(`a group of ${size} rows whose last row cannot be stored stores none of them`, () => {
    const commit = rowCommitter(db);
    const rows = Array.from({ length: size }, (_, index) => served(1, index));
    rows[size - 1] = [1, 1, null as unknown as string, '{}'];
    assert.throws(() => commit(rows), /NOT NULL/);
    assert.is(readEvents(db).length, 0);
    commit([served(1, 1)]);
    assert.is(readEvents(db).length, 1, 'the history still takes rows');
  });
}

test.run();
