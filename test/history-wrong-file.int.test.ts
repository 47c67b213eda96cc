/**
 * `--history` given something that is not an imgcache history is refused with a sentence that says what it is: a
 * folder (history-is-a-folder), or another application's SQLite database (history-foreign-database), which is left
 * as it was. An empty database file, or an empty file, becomes a history.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { usageFromFile } from '../db/history-backend.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { refusal } from './helpers/refused-start.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';

test('a folder given as the history is refused as a folder, not as a file with hard links', async () => {
  const folder = makeTemporaryFolder();
  const given = path.join(folder, 'data');
  mkdirSync(given);
  try {
    const refused = await refusal({ folder, database: given });
    assert.is(refused?.code, 'history-is-a-folder');
    assert.match(refused?.message ?? '', `the history ${given} is a folder`);
    assert.not.match(refused?.message ?? '', /hard link/);
    assert.equal(readdirSync(given), [], 'nothing written in it');
    assert.not.ok(existsSync(`${given}.lock`), 'no lock left');
    assert.throws(() => Array.from(usageFromFile(given)), /is a folder/, 'the history command says the same');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

/** An SQLite file of another application: its own tables, and the user_version it sets (0 when it sets none). */
function foreignDatabase(file: string, userVersion: number): void {
  const db = new BetterSqlite3(file);
  db.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE orders (id INTEGER PRIMARY KEY)');
  db.exec("INSERT INTO customers (name) VALUES ('Ada')");
  db.pragma(`user_version = ${userVersion}`);
  db.close();
}

for (const userVersion of [0, 2]) {
  test(`another application's SQLite database (user_version ${userVersion}) is refused and left as it was`, async () => {
    const folder = makeTemporaryFolder();
    const database = path.join(folder, 'app.sqlite');
    foreignDatabase(database, userVersion);
    try {
      const refused = await refusal({ folder, database });
      assert.is(refused?.code, 'history-foreign-database');
      assert.match(
        refused?.message ?? '',
        /another application \(tables: customers, orders\), not an imgcache history/,
      );
      assert.equal(readdirSync(folder), ['app.sqlite'], 'no WAL, no lock left beside it');
      const db = new BetterSqlite3(database, { readonly: true });
      try {
        assert.equal(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all(), [
          'customers',
          'orders',
        ]);
        assert.is(db.pragma('journal_mode', { simple: true }), 'delete', 'not switched to WAL');
        assert.is(db.pragma('user_version', { simple: true }), userVersion);
      } finally {
        db.close();
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
}

test('an empty database file, and an empty file, become a history', async () => {
  const folder = makeTemporaryFolder();
  try {
    const emptyDatabase = path.join(folder, 'empty.sqlite');
    new BetterSqlite3(emptyDatabase).close();
    const emptyFile = path.join(folder, 'zero.sqlite');
    writeFileSync(emptyFile, '');
    for (const database of [emptyDatabase, emptyFile]) {
      const running = await startTestServer({ folder, database });
      await running.stop();
      assert.equal(
        readHistoryFile(database).map((event) => event.type),
        ['server-started', 'server-stopped'],
        `${path.basename(database)} took the run`,
      );
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a history damaged in the middle is refused at start, with what to do, and nothing is written to it', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  try {
    const running = await startTestServer({ folder, database });
    await running.stop();
    // Enough rows for many pages, in a file without a WAL, then garbage over a page in the middle of the table.
    const db = new BetterSqlite3(database);
    const insert = db.prepare("INSERT INTO event_rows (at, session, type, data) VALUES (?, NULL, 'note', ?)");
    db.transaction(() => {
      for (let row = 0; row < 5_000; row++) insert.run(row, `{"row":${row},"padding":"${'x'.repeat(60)}"}`);
    })();
    db.pragma('journal_mode = DELETE');
    db.close();
    const bytes = readFileSync(database);
    const pageBytes = bytes.readUInt16BE(16);
    const middlePage = Math.floor(bytes.length / pageBytes / 2);
    bytes.fill(0x47, middlePage * pageBytes, middlePage * pageBytes + 200);
    writeFileSync(database, bytes);

    const refused = await refusal({ folder, database });
    assert.is(refused?.code, 'history-damaged');
    assert.match(refused?.message ?? '', `the history ${database} is damaged`);
    assert.match(refused?.message ?? '', '.recover');
    assert.ok(readFileSync(database).equals(bytes), 'the file is left as it was');
    assert.not.ok(existsSync(`${database}.lock`), 'no lock left');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
