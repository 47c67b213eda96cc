import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nextConnectionNumber } from '../db/connection-numbers.ts';
import { HistoryError } from '../db/errors.ts';
import { EventLog, type RecordDone } from '../db/event-log.ts';
import type { NewEvent, StoredEvent } from '../db/events.ts';
import { type Database, openDatabase } from '../db/open-database.ts';
import { iterateEvents, readEvents } from '../db/read-events.ts';
import { closeOrphanedSessions } from '../db/recover-sessions.ts';
import { MIGRATIONS, migrate, SCHEMA_VERSION, schemaVersion } from '../db/schema.ts';
import { usageJsonChunksFromDatabase } from '../db/usage-export.ts';
import type { UsageDocument } from '../db/usage-projection.ts';

// Every test gets a fresh folder; whatever it opens is closed and the folder removed in after.each.
let folder = '';
let opened: Database[] = [];

test.before.each(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'imgcache-event-store-'));
  opened = [];
});

test.after.each(() => {
  for (const db of opened) if (db.open) db.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

function historyFile(name = 'history.sqlite'): string {
  return path.join(folder, name);
}

function open(file = historyFile(), options: Parameters<typeof openDatabase>[1] = {}): Database {
  const db = openDatabase(file, options);
  opened.push(db);
  return db;
}

/** A raw better-sqlite3 connection, bypassing openDatabase, to set up or inspect a file the way a stranger would. */
function rawConnection(file: string, options: BetterSqlite3.Options = {}): Database {
  const db = new BetterSqlite3(file, options);
  opened.push(db);
  return db;
}

function admitted(session: number, at?: number): NewEvent {
  return {
    type: 'session-admitted',
    session,
    at,
    data: { name: `client-${session}`, code: 108, tier: 'bronze', quota: 3, protocolVersion: 1, remote: '127.0.0.1' },
  };
}

function served(session: number, image = 'sunset.png'): NewEvent {
  return {
    type: 'image-served',
    session,
    data: { requestId: 1, image, bytes: 10, sha256: 'ab', quotaUsed: 1, quotaLimit: 3 },
  };
}

function closed(session: number, reason = 'client-exit'): NewEvent {
  return { type: 'session-closed', session, data: { reason } };
}

function rejected(session: number): NewEvent {
  return {
    type: 'connection-rejected',
    session,
    data: { reason: 'server-full', occupancy: { open: 3, capacity: 3 }, remote: '127.0.0.1' },
  };
}

function recordAsync(log: EventLog, events: NewEvent[]): Promise<Error | null> {
  return new Promise((resolve) => log.record(events, resolve));
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function catchError(fn: () => unknown): HistoryError {
  try {
    fn();
  } catch (error) {
    assert.instance(error, HistoryError);
    return error as HistoryError;
  }
  throw new Error('expected a HistoryError to be thrown');
}

function codeOf(fn: () => unknown): string {
  return catchError(fn).code;
}

function positions(events: readonly StoredEvent[]): number[] {
  return events.map((event) => event.position);
}

// --- schema -----------------------------------------------------------------------------------------------------

test('the first open creates the folder, the schema at user_version 5, WAL and synchronous FULL', () => {
  const file = path.join(folder, 'nested', 'deeper', 'history.sqlite');
  const db = open(file);
  assert.ok(fs.existsSync(file));
  assert.is(SCHEMA_VERSION, 5);
  assert.is(schemaVersion(db), 5);
  assert.is(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.is(db.pragma('synchronous', { simple: true }), 2);
  const names = db
    .prepare<[], string>("SELECT name FROM sqlite_schema WHERE tbl_name IN ('events', 'event_rows') ORDER BY name")
    .pluck()
    .all();
  assert.equal(names, [
    'event_rows',
    'events',
    'events_admitted',
    'events_closed',
    'events_dropped',
    'events_registry',
    'events_rejected',
  ]);
});

test('a version 1 history is migrated to the current version in place: its events kept, its indexes replaced', () => {
  const file = historyFile();
  const old = rawConnection(file);
  old.exec(MIGRATIONS[0] ?? '');
  old.pragma('user_version = 1');
  const insert = old.prepare('INSERT INTO events (position, at, session, type, data) VALUES (?, 1, ?, ?, ?)');
  insert.run(4, 7, 'session-admitted', '{}');
  insert.run(9, 7, 'session-closed', '{"reason":"client-exit"}');
  old.close();
  const db = open(file);
  assert.is(schemaVersion(db), SCHEMA_VERSION);
  new EventLog(db).recordNow([admitted(8)]);
  assert.equal(
    readEvents(db).map((event) => [event.position, event.session, event.type]),
    [
      [4, 7, 'session-admitted'],
      [9, 7, 'session-closed'],
      [10, 8, 'session-admitted'],
    ],
    'positions kept, and the next one follows the largest',
  );
  assert.is(nextConnectionNumber(db), 9);
  const indexes = db.prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'index'").pluck().all();
  assert.not.ok(indexes.includes('events_by_session'));
});

test('appending a row builds no temporary B-tree for the partial indexes, whose WHEREs are plain comparisons', () => {
  const db = open();
  const opcodes = db
    .prepare<[], { opcode: string }>(
      `EXPLAIN INSERT INTO event_rows (at, session, type, data) VALUES (1, 1, 'x', '{}')`,
    )
    .all()
    .map((step) => step.opcode)
    .join(' ');
  assert.ok(opcodes.includes('IdxInsert'), 'the plan is read as expected');
  assert.not.ok(opcodes.includes('OpenEphemeral'), opcodes);
});

test('reopening a history does not run its migrations again', () => {
  const file = historyFile();
  const first = open(file);
  new EventLog(first).recordNow([admitted(1)]);
  first.close();
  const again = open(file);
  assert.is(schemaVersion(again), MIGRATIONS.length);
  assert.is(migrate(again, file), 0);
  assert.is(readEvents(again).length, 1);
});

test('a history written by a newer schema refuses to open, writable or read-only, and is left untouched', () => {
  const file = historyFile();
  const stranger = rawConnection(file);
  stranger.exec('CREATE TABLE events (x); PRAGMA user_version = 99;');
  stranger.close();
  assert.is(
    codeOf(() => open(file)),
    'history-too-new',
  );
  assert.is(
    codeOf(() => open(file, { readonly: true })),
    'history-too-new',
  );
  const check = rawConnection(file, { readonly: true });
  assert.is(check.pragma('user_version', { simple: true }), 99);
  assert.is(check.pragma('journal_mode', { simple: true }), 'delete', 'not even switched to WAL');
});

test('a read-only open of a missing file fails with history-not-found and creates nothing', () => {
  const file = path.join(folder, 'missing', 'history.sqlite');
  assert.is(
    codeOf(() => open(file, { readonly: true })),
    'history-not-found',
  );
  assert.not.ok(fs.existsSync(path.dirname(file)));
});

test('a file that is not a database fails with history-not-a-database, read-only or writable', () => {
  const file = historyFile('notes.sqlite');
  fs.writeFileSync(file, 'these are not the pages of an SQLite database, just text long enough to fill a header.\n');
  assert.is(
    codeOf(() => open(file, { readonly: true })),
    'history-not-a-database',
  );
  assert.is(
    codeOf(() => open(file)),
    'history-not-a-database',
  );
});

test('a history locked by another connection fails with history-locked once the busy timeout passes', () => {
  const file = historyFile();
  const holder = rawConnection(file);
  holder.pragma('journal_mode = DELETE');
  holder.exec('CREATE TABLE other (x); BEGIN EXCLUSIVE; INSERT INTO other VALUES (1);');
  const error = catchError(() => open(file, { busyTimeoutMs: 20 }));
  assert.is(error.code, 'history-locked');
  assert.match(String((error.cause as Error).message), /locked/);
  holder.exec('ROLLBACK');
});

test('a read-only open needs a migrated history: an empty database is history-outdated', () => {
  const file = historyFile();
  rawConnection(file).exec('CREATE TABLE unrelated (x)');
  assert.is(
    codeOf(() => open(file, { readonly: true })),
    'history-outdated',
  );
});

// --- group commit -----------------------------------------------------------------------------------------------

test('events recorded in one turn commit together after setImmediate, dones in order, positions consecutive', async () => {
  const file = historyFile();
  const log = new EventLog(open(file));
  const reader = open(file, { readonly: true });
  const calls: string[] = [];
  const seenAtFirstDone: number[] = [];
  const note =
    (name: string, check?: () => void): RecordDone =>
    (error) => {
      assert.is(error, null);
      check?.();
      calls.push(name);
    };
  log.record(
    [admitted(1), served(1)],
    note('a', () => seenAtFirstDone.push(...positions(readEvents(reader)))),
  );
  log.record([admitted(2)], note('b'));
  log.record([closed(1)], note('c'));
  assert.equal(calls, [], 'no done runs in the turn that recorded');
  assert.is(readEvents(reader).length, 0, 'nothing is visible before the commit');
  await nextTurn();
  assert.equal(calls, ['a', 'b', 'c']);
  // The last record of the turn was already durable when the first done ran: one commit for the whole turn.
  assert.equal(seenAtFirstDone, [1, 2, 3, 4]);
  assert.equal(
    readEvents(reader).map((event) => [event.position, event.type, event.session]),
    [
      [1, 'session-admitted', 1],
      [2, 'image-served', 1],
      [3, 'session-admitted', 2],
      [4, 'session-closed', 1],
    ],
  );
});

test('an event is not visible to another connection before its done runs', async () => {
  const file = historyFile();
  const log = new EventLog(open(file));
  const reader = open(file, { readonly: true });
  const visibleInDone = await new Promise<number>((resolve) => {
    log.record([admitted(7)], () => resolve(readEvents(reader, { session: 7 }).length));
    assert.is(readEvents(reader, { session: 7 }).length, 0);
  });
  assert.is(visibleInDone, 1);
});

test('a record made from inside a done goes into the next commit, after the current batch', async () => {
  const log = new EventLog(open());
  const order: string[] = [];
  await new Promise<void>((resolve) => {
    log.record([admitted(1)], () => {
      order.push('first');
      log.record([closed(1)], () => {
        order.push('nested');
        resolve();
      });
    });
    log.record([admitted(2)], () => order.push('second'));
  });
  assert.equal(order, ['first', 'second', 'nested']);
  assert.equal(
    readEvents(log.db).map((event) => event.session),
    [1, 2, 1],
  );
});

test('a failing commit gives every done of the batch the error and stores nothing of it', async () => {
  const db = open();
  const log = new EventLog(db);
  await recordAsync(log, [admitted(1)]);
  // A real SQLite failure: a temporary trigger aborts the insert of one poisoned event in the middle of the batch.
  db.exec(`CREATE TEMP TRIGGER poison BEFORE INSERT ON event_rows
           WHEN json_extract(NEW.data, '$.reason') = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned event'); END`);
  const outcomes = await Promise.all([
    recordAsync(log, [served(1)]),
    recordAsync(log, [closed(1, 'poison')]),
    recordAsync(log, [admitted(2)]),
  ]);
  for (const error of outcomes) {
    assert.instance(error, HistoryError);
    assert.is((error as HistoryError).code, 'history-append-failed');
    assert.match(String(((error as HistoryError).cause as Error).message), /poisoned event/);
  }
  assert.is(outcomes[0], outcomes[2], 'the same error for the whole batch');
  assert.equal(positions(readEvents(db)), [1]);
  db.exec('DROP TRIGGER poison');
  assert.is(await recordAsync(log, [served(1)]), null, 'the log keeps working after a failed batch');
  assert.equal(positions(readEvents(db)), [1, 2]);
});

test('a commit blocked by another writer past the busy timeout fails the batch with history-append-failed', async () => {
  const file = historyFile();
  const log = new EventLog(open(file, { busyTimeoutMs: 20 }));
  const other = rawConnection(file);
  other.exec('BEGIN IMMEDIATE');
  const error = await recordAsync(log, [admitted(1)]);
  assert.is((error as HistoryError | null)?.code, 'history-append-failed');
  assert.match(String(((error as HistoryError).cause as Error).message), /locked/);
  other.exec('ROLLBACK');
  assert.is(readEvents(log.db).length, 0);
});

test('recordNow commits synchronously, after whatever is queued, and calls the queued dones', () => {
  const log = new EventLog(open());
  const dones: Array<Error | null> = [];
  log.record([admitted(1)], (error) => dones.push(error));
  log.recordNow([{ type: 'server-stopped', session: null, data: { reason: 'shutdown' } }]);
  assert.equal(dones, [null]);
  assert.equal(
    readEvents(log.db).map((event) => event.type),
    ['session-admitted', 'server-stopped'],
  );
});

test('recordNow throws the coded error when its commit fails', () => {
  const db = open();
  const log = new EventLog(db);
  db.exec(`CREATE TEMP TRIGGER refuse BEFORE INSERT ON event_rows BEGIN SELECT RAISE(ABORT, 'refused'); END`);
  assert.is(
    codeOf(() => log.recordNow([admitted(1)])),
    'history-append-failed',
  );
});

test('flush commits the queue now; close flushes, then refuses further records with history-closed', async () => {
  const log = new EventLog(open());
  const dones: string[] = [];
  log.record([admitted(1)], () => dones.push('flushed'));
  log.flush();
  assert.equal(dones, ['flushed']);
  log.record([closed(1)], () => dones.push('closed'));
  log.close();
  assert.equal(dones, ['flushed', 'closed']);
  assert.ok(log.db.open, 'the database belongs to whoever opened it');
  const error = await recordAsync(log, [admitted(2)]);
  assert.is((error as HistoryError | null)?.code, 'history-closed');
  assert.is(
    codeOf(() => log.recordNow([admitted(2)])),
    'history-closed',
  );
  assert.is(readEvents(log.db).length, 2);
});

test('the clock stamps events without `at`; a given `at` is kept', () => {
  let clock = 1_000;
  const log = new EventLog(open(), { now: () => clock++ });
  log.recordNow([admitted(1), admitted(2, 42), served(1)]);
  assert.equal(
    readEvents(log.db).map((event) => event.at),
    [1_000, 42, 1_001],
  );
});

// --- reads and projections ----------------------------------------------------------------------------------------

test('readEvents and iterateEvents filter by position, session and limit, in position order', () => {
  const log = new EventLog(open());
  log.recordNow([admitted(1), admitted(2), served(1), served(2), closed(1), closed(2)]);
  const db = log.db;
  assert.equal(positions(readEvents(db)), [1, 2, 3, 4, 5, 6]);
  assert.equal(positions(readEvents(db, { session: 2 })), [2, 4, 6]);
  assert.equal(positions(readEvents(db, { afterPosition: 2, session: 1 })), [3, 5]);
  assert.equal(positions(readEvents(db, { afterPosition: 1, limit: 2 })), [2, 3]);
  assert.equal(Array.from(iterateEvents(db, { session: 1, limit: 2 })), readEvents(db, { session: 1, limit: 2 }));
  const [first] = readEvents(db, { limit: 1 });
  assert.equal(first?.data, admitted(1).data);
});

test('nextConnectionNumber is 1 on an empty history, then 1 + the largest session ever stored', () => {
  const log = new EventLog(open());
  assert.is(nextConnectionNumber(log.db), 1);
  log.recordNow([{ type: 'server-started', session: null, data: { version: '1', pid: 1, capacity: 3 } }]);
  assert.is(nextConnectionNumber(log.db), 1);
  log.recordNow([admitted(4), rejected(9), admitted(5)]);
  assert.is(nextConnectionNumber(log.db), 10);
  log.recordNow([{ type: 'connection-dropped', session: 12, data: { reason: 'client-closed', remote: 'x' } }]);
  assert.is(nextConnectionNumber(log.db), 13);
  log.recordNow([admitted(14), served(14), closed(14)]);
  assert.is(nextConnectionNumber(log.db), 15);
});

test('nextConnectionNumber counts every event that names a number: a close alone, or any event since the start', () => {
  const log = new EventLog(open());
  const started = (nextConnection: number): NewEvent => ({
    type: 'server-started',
    session: null,
    data: { version: '1', pid: 1, capacity: 3, nextConnection },
  });
  log.recordNow([started(1), admitted(2), closed(7)]);
  assert.is(nextConnectionNumber(log.db), 8, 'a session-closed names a number (an admission that failed to commit)');
  log.recordNow([started(8), served(11)]);
  assert.is(nextConnectionNumber(log.db), 12, 'an event of the current run names a number, whatever its kind');
  log.recordNow([started(12)]);
  assert.is(nextConnectionNumber(log.db), 12, 'a run that named no number yet: its start says where it numbers from');
});

test('nextConnectionNumber reads the rows since the last start, from the end, and indexes for the rest', () => {
  const db = open();
  const plans = (sql: string) =>
    db
      .prepare<[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
      .all()
      .map((row) => row.detail);
  const log = new EventLog(db);
  const rows = 2_000;
  log.recordNow(Array.from({ length: rows }, (_, index) => served(index + 1)));
  const started: NewEvent = {
    type: 'server-started',
    session: null,
    data: { version: '1', pid: 1, capacity: 3, nextConnection: rows + 1 },
  };
  log.recordNow([started, served(rows + 1)]);
  // The number of rows SQLite steps through, counted by a function called once per row it looks at.
  let visited = 0;
  db.function('visit', () => {
    visited++;
    return 1;
  });
  db.prepare(
    `SELECT count(*) FROM (SELECT position FROM event_rows WHERE type = 'server-started' AND visit() ORDER BY position DESC LIMIT 1)`,
  ).get();
  assert.ok(visited < 10, `the search for the last start reads from the end (${visited} rows read)`);
  assert.ok(
    plans("SELECT max(session) FROM event_rows WHERE type = 'session-closed'").some((d) => d.includes('events_closed')),
  );
  assert.is(nextConnectionNumber(db), rows + 2);
});

test('nextConnectionNumber and the orphan search read indexes only, never the whole table', () => {
  const db = open();
  const plans = (sql: string) =>
    db
      .prepare<[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
      .all()
      .map((row) => row.detail);
  const scans = (sql: string) => plans(sql).filter((detail) => /^SCAN event_rows\b(?! USING)/.test(detail));
  assert.equal(scans("SELECT max(session) FROM event_rows WHERE type = 'connection-dropped'"), []);
  assert.equal(scans("SELECT session FROM event_rows WHERE type = 'session-admitted'"), []);
  assert.equal(scans("SELECT session FROM event_rows WHERE type = 'session-closed'"), []);
  assert.equal(scans("SELECT position FROM event_rows WHERE type = 'connection-rejected' ORDER BY session"), []);
  assert.ok(
    plans("SELECT session FROM event_rows WHERE type = 'session-closed'").some((d) => d.includes('events_closed')),
  );
});

test('a restart keeps the events and the connection numbers', () => {
  const file = historyFile();
  const first = open(file);
  new EventLog(first).recordNow([admitted(1), served(1), served(1, 'moon.png'), admitted(2), served(2)]);
  const before = readEvents(first);
  first.close();
  const again = open(file);
  assert.equal(readEvents(again), before);
  assert.is(nextConnectionNumber(again), 3);
});

test('closeOrphanedSessions closes exactly the sessions admitted and never closed', () => {
  let clock = 5_000;
  const log = new EventLog(open(), { now: () => clock++ });
  log.recordNow([admitted(1), admitted(2), rejected(3), admitted(4), closed(1), served(2)]);
  assert.is(closeOrphanedSessions(log), 2);
  const closings = readEvents(log.db).filter((event) => event.type === 'session-closed');
  assert.equal(
    closings.map((event) => [event.session, event.data]),
    [
      [1, { reason: 'client-exit' }],
      [2, { reason: 'server-restart' }],
      [4, { reason: 'server-restart' }],
    ],
  );
  assert.is(closeOrphanedSessions(log), 0, 'nothing left open');
});

test('closeOrphanedSessions also takes the database and a reason', () => {
  const db = open();
  new EventLog(db).recordNow([admitted(1)]);
  assert.is(closeOrphanedSessions(db, 'crash'), 1);
  assert.equal(readEvents(db, { afterPosition: 1 })[0]?.data, { reason: 'crash' });
});

test('the usage export reads a read-only connection and describes the history as it was when asked', async () => {
  const file = historyFile();
  const log = new EventLog(open(file), { now: () => Date.UTC(2026, 10, 25, 10) });
  const rejectedAt = (session: number, minute: number) => ({
    ...rejected(session),
    at: Date.UTC(2026, 10, 25, 10, minute),
  });
  log.recordNow([admitted(2), rejectedAt(5, 1), admitted(1), served(2), rejectedAt(3, 2), closed(2)]);
  const reader = open(file, { readonly: true });
  const chunks = usageJsonChunksFromDatabase(reader, { generatedAt: Date.UTC(2026, 10, 25, 11) });
  // Appends after the export was asked for still commit, and do not leak into it.
  assert.is(await recordAsync(log, [served(1), rejected(4)]), null);
  const document = JSON.parse(Array.from(chunks).join('')) as UsageDocument;
  assert.is(document.generatedAt, '2026-11-25T11:00:00.000Z');
  assert.equal(
    document.clients.map((client) => [client.name, client.quota.used, client.closeReason]),
    [
      ['client-1', 0, null],
      ['client-2', 1, 'client-exit'],
    ],
    'clients in the order of their connections, whatever the order of admission',
  );
  assert.equal(
    document.rejected.map((rejection) => rejection.at),
    ['2026-11-25T10:02:00.000Z', '2026-11-25T10:01:00.000Z'],
    'rejections in the order of their connections',
  );
});

test.run();
