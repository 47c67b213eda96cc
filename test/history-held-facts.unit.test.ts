/**
 * A clean stop whose deadline passes while the history still fails keeps its facts in a file beside the history
 * (db/held-facts.ts), in their order; when even that file cannot be written, the stop says so and how many are lost.
 * Real SQLite conditions: another connection holding the write lock.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventLog } from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { heldFactsFile, readHeldFacts } from '../db/held-facts.ts';
import { openDatabase } from '../db/open-database.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

const closed = (session: number): NewEvent => ({ session, type: 'session-closed', data: { reason: 'client-exit' } });

/** An event log on a history whose write lock another connection holds; `release` lets go of the lock. */
function lockedLog(folder: string) {
  const file = path.join(folder, 'history.sqlite');
  const db = openDatabase(file, { busyTimeoutMs: 10 });
  const other = new BetterSqlite3(file);
  other.exec('BEGIN IMMEDIATE');
  let at = 1_000;
  const log = new EventLog(db, { now: () => at++ });
  return {
    file,
    log,
    close: () => {
      other.exec('ROLLBACK');
      other.close();
      db.close();
    },
  };
}

test('facts a stop cannot commit go to <history>.held-facts, in their order, with their times', async () => {
  const folder = makeTemporaryFolder();
  const { file, log, close } = lockedLog(folder);
  try {
    log.recordFact([closed(1), closed(2)]);
    log.recordFact([{ session: null, type: 'server-stopped', data: { reason: 'shutdown' } }]);
    assert.is(await log.finish(0), 3, 'three facts not on record');
    assert.equal(log.leftBehind, { facts: 3, file: heldFactsFile(file), error: null, refused: false });
    assert.equal(
      readHeldFacts(heldFactsFile(file)).map((event) => [event.type, event.session, event.at]),
      [
        ['session-closed', 1, 1000],
        ['session-closed', 2, 1001],
        ['server-stopped', null, 1002],
      ],
    );
  } finally {
    close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a side file that cannot be written: the stop says why, and how many facts are lost', async () => {
  const folder = makeTemporaryFolder();
  const { file, log, close } = lockedLog(folder);
  try {
    mkdirSync(heldFactsFile(file)); // a folder in its place: the rename fails, as a full disk fails the write
    log.recordFact([closed(1)]);
    assert.is(await log.finish(0), 1);
    assert.is(log.leftBehind?.facts, 1);
    assert.ok(log.leftBehind?.error, 'the error that kept the facts out of the file');
    assert.equal(
      readdirSync(folder).filter((name) => name.endsWith('.tmp')),
      [],
      'no draft left behind',
    );
  } finally {
    close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a history that works leaves no file behind', async () => {
  const folder = makeTemporaryFolder();
  const file = path.join(folder, 'history.sqlite');
  const db = openDatabase(file);
  try {
    const log = new EventLog(db);
    log.recordFact([closed(1)]);
    assert.is(await log.finish(0), 0);
    assert.is(log.leftBehind, null);
    assert.equal(readHeldFacts(heldFactsFile(file)), []);
  } finally {
    db.close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
