/**
 * How the event store names SQLite's failures for the operator (db/errors.ts, db/event-log.ts, db/open-database.ts),
 * with real SQLite conditions in a temporary folder: a lock held by another connection, a trigger that aborts.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HistoryAppendError, HistoryError, sqliteCodeOf, storageCondition } from '../db/errors.ts';
import { EventLog } from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { openDatabase } from '../db/open-database.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

let folder: string;

test.before.each(() => {
  folder = makeTemporaryFolder('imgcache-history-errors-');
});

test.after.each(() => {
  rmSync(folder, { recursive: true, force: true });
});

const admitted: NewEvent = {
  session: 1,
  type: 'session-admitted',
  data: { name: 'client-1', code: 108, tier: 'bronze', quota: 3, protocolVersion: 1, remote: '127.0.0.1:1' },
};

function recordAsync(log: EventLog, events: NewEvent[]): Promise<Error | null> {
  return new Promise((resolve) => log.record(events, resolve));
}

test('SQLite result codes map to the condition an operator can act on', () => {
  const cases: Array<[string, string]> = [
    ['SQLITE_BUSY', 'locked'],
    ['SQLITE_BUSY_SNAPSHOT', 'locked'],
    ['SQLITE_LOCKED', 'locked'],
    ['SQLITE_FULL', 'disk-full'],
    ['SQLITE_READONLY', 'read-only'],
    ['SQLITE_READONLY_DBMOVED', 'read-only'],
    ['SQLITE_IOERR_WRITE', 'io-error'],
    ['SQLITE_IOERR_SHMSIZE', 'io-error'],
    ['SQLITE_CANTOPEN', 'io-error'],
    ['SQLITE_CORRUPT', 'damaged'],
    ['SQLITE_NOTADB', 'damaged'],
    ['SQLITE_CONSTRAINT_TRIGGER', 'other'],
    ['', 'other'],
  ];
  for (const [code, condition] of cases) assert.is(storageCondition(code), condition, code);
  assert.is(sqliteCodeOf(Object.assign(new Error('x'), { code: 'SQLITE_FULL' })), 'SQLITE_FULL');
  assert.is(sqliteCodeOf(Object.assign(new Error('x'), { code: 'ENOSPC' })), '', 'not an SQLite code');
  assert.is(sqliteCodeOf(null), '');
});

test('a commit blocked by another writer fails as locked, naming the file and SQLITE_BUSY', async () => {
  const file = path.join(folder, 'history.sqlite');
  const log = new EventLog(openDatabase(file, { busyTimeoutMs: 20 }));
  const other = new BetterSqlite3(file);
  other.exec('BEGIN IMMEDIATE');
  const error = await recordAsync(log, [admitted]);
  other.exec('ROLLBACK');
  other.close();
  log.db.close();
  assert.instance(error, HistoryAppendError);
  const append = error as HistoryAppendError;
  assert.is(append.code, 'history-append-failed');
  assert.is(append.condition, 'locked');
  assert.is(append.sqliteCode, 'SQLITE_BUSY');
  assert.ok(append.message.startsWith(`cannot write to the history ${file}: another process holds a lock`));
  assert.match(append.message, /1 event\(s\) not stored$/);
});

test('a record of no events is not failed by a failing commit, and keeps its place in the order of dones', async () => {
  const log = new EventLog(openDatabase(path.join(folder, 'history.sqlite')));
  log.db.exec(`CREATE TEMP TRIGGER refuse BEFORE INSERT ON event_rows BEGIN SELECT RAISE(ABORT, 'refused'); END`);
  const order: string[] = [];
  const outcomes = await Promise.all([
    new Promise<Error | null>((resolve) =>
      log.record([admitted], (error) => {
        order.push('events');
        resolve(error);
      }),
    ),
    new Promise<Error | null>((resolve) =>
      log.record([], (error) => {
        order.push('nothing');
        resolve(error);
      }),
    ),
  ]);
  log.db.close();
  assert.instance(outcomes[0], HistoryError);
  assert.is(outcomes[1], null, 'nothing to store, nothing failed');
  assert.equal(order, ['events', 'nothing']);
});

test('records of no events take no write lock: they complete while another process holds it', async () => {
  const file = path.join(folder, 'history.sqlite');
  const log = new EventLog(openDatabase(file, { busyTimeoutMs: 20 }));
  const other = new BetterSqlite3(file);
  other.exec('BEGIN IMMEDIATE');
  const outcome = await recordAsync(log, []);
  other.exec('ROLLBACK');
  other.close();
  log.db.close();
  assert.is(outcome, null);
});

test('a writable open takes the write lock once: a lock held elsewhere fails the open with history-locked', () => {
  const file = path.join(folder, 'history.sqlite');
  openDatabase(file).close();
  const other = new BetterSqlite3(file);
  other.exec('BEGIN IMMEDIATE');
  let code = '';
  try {
    openDatabase(file, { busyTimeoutMs: 20 }).close();
  } catch (error) {
    code = (error as HistoryError).code;
  }
  other.exec('ROLLBACK');
  other.close();
  assert.is(code, 'history-locked');
  openDatabase(file, { readonly: true }).close(); // a reader needs no write lock
});

test.run();
