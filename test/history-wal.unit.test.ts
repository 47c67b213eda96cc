/**
 * The WAL of a writable history is checkpointed every WAL_AUTOCHECKPOINT_PAGES pages, not SQLite's 1,000: each
 * checkpoint syncs the WAL and the database file while the event loop waits, and with `synchronous = NORMAL` those
 * syncs are the only ones. A WAL that readers let grow past its bound is cut back after its next checkpoint.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openDatabase, WAL_AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES } from '../db/open-database.ts';

let folder = '';

test.before.each(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'imgcache-history-wal-'));
});

test.after.each(() => {
  fs.rmSync(folder, { recursive: true, force: true });
});

test('a writable history checkpoints its WAL every WAL_AUTOCHECKPOINT_PAGES pages, and bounds the file', () => {
  assert.ok(WAL_AUTOCHECKPOINT_PAGES > 1_000, 'fewer checkpoints than SQLite makes by default');
  for (const synchronous of ['full', 'normal'] as const) {
    const db = openDatabase(path.join(folder, `${synchronous}.sqlite`), { synchronous });
    try {
      assert.is(db.pragma('wal_autocheckpoint', { simple: true }), WAL_AUTOCHECKPOINT_PAGES, synchronous);
      assert.is(db.pragma('journal_size_limit', { simple: true }), WAL_SIZE_LIMIT_BYTES, synchronous);
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      assert.ok(WAL_SIZE_LIMIT_BYTES > WAL_AUTOCHECKPOINT_PAGES * (pageSize + 24), 'a full WAL is not cut back');
    } finally {
      db.close();
    }
  }
});

test('a read-only connection does not set them: it never writes', () => {
  const file = path.join(folder, 'history.sqlite');
  openDatabase(file).close();
  const reader = openDatabase(file, { readonly: true });
  try {
    assert.is.not(reader.pragma('wal_autocheckpoint', { simple: true }), WAL_AUTOCHECKPOINT_PAGES);
  } finally {
    reader.close();
  }
});

test.run();
