/**
 * The compact row of an image served (db/image-versions.ts, schema version 5): each image version is written once,
 * each get's row names it; readers in the code and the `events` view that `sqlite3` users read see the event's data
 * exactly as it was recorded, for rows written before version 5 as for rows written after.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventLog } from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { imageVersionNumbers, servedImageJson, servedImageRow } from '../db/image-versions.ts';
import { type Database, openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import { rowCommitter } from '../db/row-committer.ts';
import { MIGRATIONS } from '../db/schema.ts';
import { usageJsonChunksFromDatabase } from '../db/usage-export.ts';
import type { UsageDocument } from '../db/usage-projection.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

let folder = '';
let file = '';

test.before.each(() => {
  folder = makeTemporaryFolder('imgcache-image-versions-');
  file = path.join(folder, 'history.sqlite');
});

test.after.each(() => {
  rmSync(folder, { recursive: true, force: true });
});

const SUNSET = { image: 'sunset.png', bytes: 9_802, sha256: 'a'.repeat(64) };
const SUNSET_EDITED = { image: 'sunset.png', bytes: 9_950, sha256: 'b'.repeat(64) };
const QUOTED = { image: 'l’été "au lac".png', bytes: 12, sha256: 'c'.repeat(64) };

type Version = typeof SUNSET;

function served(session: number, requestId: number, version: Version, quotaUsed: number): NewEvent {
  return { type: 'image-served', session, data: { requestId, ...version, quotaUsed, quotaLimit: 10 } };
}

function admitted(session: number): NewEvent {
  const data = { name: `client-${session}`, code: 950, tier: 'platinum', quota: 10, protocolVersion: 1, remote: 'x' };
  return { type: 'session-admitted', session, data };
}

/** The rows as stored, and the `events` view's data, read the way a stranger with `sqlite3` would. */
function stored(db: Database) {
  const rows = db
    .prepare<[], { type: string; data: string; image_version: number | null }>(
      'SELECT type, data, image_version FROM event_rows ORDER BY position',
    )
    .all();
  const view = db.prepare<[], string>('SELECT data FROM events ORDER BY position').pluck().all();
  const versions = db.prepare('SELECT version, image, bytes, sha256 FROM image_versions ORDER BY version').all();
  return { rows, view, versions };
}

test('an image served is stored as its version and three integers; its version is written once', () => {
  const db = openDatabase(file);
  const log = new EventLog(db);
  log.recordNow([admitted(1), served(1, 1, SUNSET, 1), served(1, 2, SUNSET, 2)]);
  log.recordNow([served(1, 3, SUNSET_EDITED, 3), served(1, 4, SUNSET, 4), served(1, 5, QUOTED, 5)]);
  const { rows, versions } = stored(db);
  assert.equal(
    rows.slice(1).map((row) => [row.data, row.image_version]),
    [
      ['[1,1,10]', 1],
      ['[2,2,10]', 1],
      ['[3,3,10]', 2],
      ['[4,4,10]', 1],
      ['[5,5,10]', 3],
    ],
  );
  assert.equal(versions, [
    { version: 1, ...SUNSET },
    { version: 2, ...SUNSET_EDITED },
    { version: 3, ...QUOTED },
  ]);
  assert.is(rows[0]?.image_version, null, 'other rows name no version');
  db.close();
});

test('a group larger than one INSERT, with a new version in it, is stored whole and read back as recorded', () => {
  const db = openDatabase(file);
  const events = Array.from({ length: 150 }, (_, index) =>
    served(1, index + 1, [SUNSET, QUOTED, SUNSET_EDITED][index % 3] as Version, index + 1),
  );
  new EventLog(db).recordNow([admitted(1), ...events]);
  assert.equal(
    readEvents(db).map((event) => event.data),
    [admitted(1), ...events].map((event) => event.data),
  );
  assert.is(stored(db).versions.length, 3);
  db.close();
});

test('the code reads back, and the events view shows, the very JSON the event would have been written as', () => {
  const db = openDatabase(file);
  const events = [admitted(1), served(1, 1, SUNSET, 1), served(1, 2, QUOTED, 2), served(1, 3, SUNSET_EDITED, 3)];
  new EventLog(db).recordNow(events);
  const expected = events.map((event) => JSON.stringify(event.data));
  assert.equal(stored(db).view, expected, 'byte for byte, members in the same order');
  assert.equal(
    readEvents(db).map((event) => event.data),
    events.map((event) => event.data),
  );
  assert.is(servedImageJson(servedImageRow(served(1, 2, QUOTED, 2).data as never)), expected[2]);
  db.close();
});

test('a history of version 4 is migrated in place: its rows are kept as written and read as before, new ones compact', () => {
  const old = new BetterSqlite3(file);
  for (const migration of MIGRATIONS.slice(0, 4)) old.exec(migration);
  old.pragma('user_version = 4');
  const before = [admitted(1), served(1, 1, SUNSET, 1)];
  const insert = old.prepare('INSERT INTO events (at, session, type, data) VALUES (?, ?, ?, ?)');
  for (const event of before) insert.run(1_000, event.session, event.type, JSON.stringify(event.data));
  old.close();

  const db = openDatabase(file);
  const after = [served(1, 2, SUNSET, 2), { type: 'session-closed', session: 1, data: { reason: 'client-exit' } }];
  new EventLog(db).recordNow(after as NewEvent[]);
  const { rows, view } = stored(db);
  assert.is(rows[1]?.data, JSON.stringify(before[1]?.data), 'the old row is untouched');
  assert.is(rows[1]?.image_version, null);
  assert.is(rows[2]?.data, '[2,2,10]');
  assert.equal(
    view,
    [...before, ...after].map((event) => JSON.stringify(event.data)),
  );
  assert.equal(
    readEvents(db).map((event) => event.data),
    [...before, ...after].map((event) => event.data),
  );
  const usage = JSON.parse([...usageJsonChunksFromDatabase(db, { generatedAt: 0 })].join('')) as UsageDocument;
  assert.equal(
    usage.clients[0]?.requests.map((request) => [request.image, request.outcome, request.bytes]),
    [
      ['sunset.png', 'served', SUNSET.bytes],
      ['sunset.png', 'served', SUNSET.bytes],
    ],
  );
  db.close();
});

test('[P-49] a rate-limited refusal counted on an image served keeps its count: the row is rewritten whole', () => {
  const db = openDatabase(file);
  const log = new EventLog(db);
  const rateLimited = (requestId: number): NewEvent => ({
    type: 'answer-repeated',
    session: 1,
    at: 5_000 + requestId,
    data: { requestId, count: 'rateLimited' },
  });
  log.recordNow([admitted(1), served(1, 1, SUNSET, 1), served(1, 2, QUOTED, 2)]);
  log.recordNow([rateLimited(3)]);
  log.recordNow([rateLimited(4)]);
  const expected = { ...served(1, 2, QUOTED, 2).data, rateLimited: 2, lastRateLimitedAt: 5_004 };
  assert.equal(readEvents(db)[2]?.data, expected);
  const { rows, view } = stored(db);
  assert.is(rows[2]?.image_version, null);
  assert.equal(JSON.parse(view[2] ?? ''), expected);
  assert.is(rows[1]?.data, '[1,1,10]', 'the image served before it stays compact');
  db.close();
});

test('a version found inside a transaction that rolls back is not remembered: the next row adds it again', () => {
  const db = openDatabase(file);
  const numberOf = imageVersionNumbers(db);
  const row = servedImageRow(served(1, 1, SUNSET, 1).data as never);
  const failing = db.transaction(() => {
    numberOf(row);
    throw new Error('rolled back');
  });
  assert.throws(() => failing(), /rolled back/);
  assert.is(db.prepare('SELECT count(*) FROM image_versions').pluck().get(), 0);
  // Another image takes the number the rolled-back one had: a remembered number would now name the wrong image.
  rowCommitter(db)([[1, 1, 'image-served', servedImageRow(served(1, 1, QUOTED, 1).data as never)]]);
  const version = numberOf(row);
  assert.is(version, 2);
  assert.equal(db.prepare('SELECT image FROM image_versions WHERE version = ?').pluck().get(version), SUNSET.image);
  db.close();
});

test.run();
