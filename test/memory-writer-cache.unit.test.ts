/**
 * Memory that does not grow with age: a writable history connection caches at most WRITER_CACHE_KIB of pages.
 * better-sqlite3's build of SQLite caches 16 MB per connection, so the server's writer kept every page it appended
 * until 16 MB (0.5 KB per session of the soak in bench/session-soak.ts); the bench's soak measures the whole server.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Database, openDatabase, WRITER_CACHE_KIB } from '../db/open-database.ts';

let folder = '';
let opened: Database[] = [];

test.before.each(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'imgcache-writer-cache-'));
  opened = [];
});

test.after.each(() => {
  for (const db of opened) if (db.open) db.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

function open(options: Parameters<typeof openDatabase>[1] = {}): Database {
  const db = openDatabase(path.join(folder, 'history.sqlite'), options);
  opened.push(db);
  return db;
}

/** The page cache's bound in KiB (SQLite gives a negative cache_size in KiB, a positive one in pages). */
function cacheKib(db: Database): number {
  const size = db.pragma('cache_size', { simple: true }) as number;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  return size < 0 ? -size : (size * pageSize) / 1024;
}

test('a writable history connection caches at most WRITER_CACHE_KIB of pages, whatever SQLite was built with', () => {
  assert.ok(WRITER_CACHE_KIB <= 2048, 'the bound is small');
  for (const synchronous of ['full', 'normal'] as const) {
    const db = open({ synchronous });
    assert.is(cacheKib(db), WRITER_CACHE_KIB, synchronous);
    db.close();
  }
});

test('the bound holds after many appends: the cache setting is not reset by commits or checkpoints', () => {
  const db = open();
  const insert = db.prepare('INSERT INTO event_rows (at, session, type, data) VALUES (?, ?, ?, ?)');
  const data = JSON.stringify({ requestId: 1, image: 'sunset.png', bytes: 9802, sha256: 'a'.repeat(64) });
  const append = db.transaction((from: number) => {
    for (let session = from; session < from + 100; session++) insert.run(Date.now(), session, 'image-served', data);
  });
  for (let from = 0; from < 5_000; from += 100) append.immediate(from);
  db.pragma('wal_checkpoint(TRUNCATE)');
  assert.is(cacheKib(db), WRITER_CACHE_KIB);
});

test('a read-only connection (the usage export) keeps the larger default: its sort spills past the cache', () => {
  open().close();
  const reader = open({ readonly: true });
  assert.ok(cacheKib(reader) > WRITER_CACHE_KIB, `read-only cache ${cacheKib(reader)} KiB`);
});

test.run();
