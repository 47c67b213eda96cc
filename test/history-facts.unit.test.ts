/**
 * The history never drops a fact (db/event-log.ts): `record` is for an answer's events, discarded with the answer
 * when their commit fails; `recordFact` is for what happened whatever the history says, kept in memory in order
 * when its commit fails and committed, before anything recorded later, once the history is back or at a clean stop.
 * Real SQLite conditions: another connection holding the write lock. Where a test needs a retry not to come yet, it
 * gives the event log a retry timer it ticks by hand, so that no assertion depends on how fast the machine is.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HistoryAppendError } from '../db/errors.ts';
import {
  type BackgroundCommitter,
  EventLog,
  type EventLogOptions,
  FACT_RETRY_MAX_MS,
  FACT_RETRY_MIN_MS,
  type HistoryHealth,
  type RetryTimer,
} from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { type Database, openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import { type EventRow, rowCommitter } from '../db/row-committer.ts';
import { eventually, makeTemporaryFolder } from './helpers/test-server.ts';

let folder = '';
let opened: Database[] = [];

test.before.each(() => {
  folder = makeTemporaryFolder('imgcache-history-facts-');
  opened = [];
});

test.after.each(() => {
  for (const db of opened) if (db.open) db.close();
  rmSync(folder, { recursive: true, force: true });
});

function historyFile(): string {
  return path.join(folder, 'history.sqlite');
}

/** The server's connection (a short busy timeout) and a stranger's connection to the same file. */
function openPair(busyTimeoutMs = 20): { db: Database; other: Database } {
  const db = openDatabase(historyFile(), { busyTimeoutMs });
  const other = new BetterSqlite3(historyFile());
  opened.push(db, other);
  return { db, other };
}

const admitted = (session: number): NewEvent => ({
  session,
  type: 'session-admitted',
  data: { name: `client-${session}`, code: 108, tier: 'bronze', quota: 3, protocolVersion: 1, remote: 'x' },
});
const served = (session: number): NewEvent => ({
  session,
  type: 'image-served',
  data: { requestId: 1, image: 'sunset.png', bytes: 10, sha256: 'ab', quotaUsed: 1, quotaLimit: 3 },
});
const closed = (session: number): NewEvent => ({ session, type: 'session-closed', data: { reason: 'client-exit' } });

function recordAsync(log: EventLog, events: NewEvent[]): Promise<Error | null> {
  return new Promise((resolve) => log.record(events, resolve));
}

function factAsync(log: EventLog, events: NewEvent[]): Promise<Error | null> {
  return new Promise((resolve) => log.recordFact(events, resolve));
}

function stored(db: Database): Array<[string, number | null]> {
  return readEvents(db).map((event) => [event.type, event.session]);
}

/** An event log whose late facts and health reports are kept, and a promise for the next batch of late facts. */
function watchedLog(db: Database, options: EventLogOptions = {}) {
  const health: HistoryHealth[] = [];
  const late: NewEvent[][] = [];
  let lateWaiter: (() => void) | null = null;
  const log = new EventLog(db, {
    ...options,
    onHealth: (report) => health.push(report),
    onLateFacts: (events) => {
      late.push([...events]);
      lateWaiter?.();
    },
  });
  const nextLateFacts = () => new Promise<void>((resolve) => (lateWaiter = resolve));
  return { log, health, late, nextLateFacts };
}

test('a fact whose commit fails is kept; the answer of the same batch is discarded; both dones get the error', async () => {
  const { db, other } = openPair();
  const { log, nextLateFacts } = watchedLog(db);
  log.recordNow([admitted(1)]);
  other.exec('BEGIN IMMEDIATE');
  const [answer, fact] = await Promise.all([recordAsync(log, [served(1)]), factAsync(log, [closed(1)])]);
  assert.instance(answer, HistoryAppendError);
  assert.instance(fact, HistoryAppendError);
  assert.is(log.heldFacts, 1, 'the fact is held in memory');
  const committed = nextLateFacts();
  other.exec('ROLLBACK');
  await committed;
  assert.is(await recordAsync(log, [admitted(2)]), null);
  assert.equal(
    stored(db),
    [
      ['session-admitted', 1],
      ['session-closed', 1],
      ['session-admitted', 2],
    ],
    'the held fact is committed before what was recorded after it; the failed answer is not on record',
  );
  assert.is(log.heldFacts, 0);
});

test('held facts are retried on a timer: on record once the lock is released, with nothing else recorded', async () => {
  const { db, other } = openPair();
  const { log, late, nextLateFacts } = watchedLog(db);
  other.exec('BEGIN IMMEDIATE');
  await factAsync(log, [closed(1)]);
  await factAsync(log, [closed(2)]);
  assert.is(log.heldFacts, 2);
  const committed = nextLateFacts();
  other.exec('ROLLBACK');
  await committed;
  assert.equal(
    late.flat().map((event) => event.session),
    [1, 2],
  );
  assert.equal(stored(db), [
    ['session-closed', 1],
    ['session-closed', 2],
  ]);
});

/**
 * The event log's retry timer, advanced by hand: a retry comes only when the test ticks it, however slow or loaded
 * the machine (group commits still run on setImmediate).
 */
function manualRetryTimer(): RetryTimer & { tick(ms: number): void } {
  let now = 0;
  let nextHandle = 1;
  const due = new Map<unknown, { at: number; run: () => void }>();
  return {
    set: (run, delayMs) => {
      const handle = nextHandle++;
      due.set(handle, { at: now + delayMs, run });
      return handle;
    },
    clear: (handle) => {
      due.delete(handle);
    },
    tick: (ms) => {
      now += ms;
      for (const [handle, timer] of [...due].sort(([, a], [, b]) => a.at - b.at)) {
        if (timer.at > now || !due.has(handle)) continue;
        due.delete(handle);
        timer.run();
      }
    },
  };
}

const failedReports = (health: readonly HistoryHealth[]) => health.filter((report) => report.kind === 'failed');

test('while held facts wait for their retry, records fail at once, without an attempt on the locked history', async () => {
  const clock = manualRetryTimer();
  const { db, other } = openPair();
  const { log, health, nextLateFacts } = watchedLog(db, { retryTimer: clock });
  other.exec('BEGIN IMMEDIATE');
  const first = await factAsync(log, [closed(1)]);
  assert.instance(first, HistoryAppendError);
  assert.is((first as HistoryAppendError).condition, 'locked', 'the first commit was attempted, and met the lock');
  assert.is(failedReports(health).length, 1);
  // The retry is due and not yet made: these fail with the failure already known, and are not attempted (an
  // attempt would wait out the busy timeout, and would be reported as another failed commit).
  assert.is(await recordAsync(log, [admitted(2)]), first, 'the record fails with the known failure');
  assert.is(await factAsync(log, [closed(3)]), first, 'and so does the fact, which is held');
  assert.is(failedReports(health).length, 1, 'no commit was attempted for them');
  assert.is(log.heldFacts, 2);
  const committed = nextLateFacts();
  other.exec('ROLLBACK');
  clock.tick(FACT_RETRY_MIN_MS);
  await committed;
  assert.equal(stored(db), [
    ['session-closed', 1],
    ['session-closed', 3],
  ]);
});

/** A busy timeout that no commit on this machine comes near, but that a commit waiting for the lock waits out. */
const LONG_BUSY_MS = 10_000;

test('a retry on the event loop does not wait for the lock: only the first failure waits out the busy timeout', async () => {
  const clock = manualRetryTimer();
  const { db, other } = openPair();
  const { log, health, nextLateFacts } = watchedLog(db, { retryTimer: clock });
  other.exec('BEGIN IMMEDIATE');
  await factAsync(log, [closed(1)]); // the first failure waits out the busy timeout (20 ms)
  // From now on a commit that waited for the lock would hold the loop LONG_BUSY_MS: the lock's holder is on this
  // thread, so it cannot let go meanwhile, and SQLite waits the whole timeout before it gives up.
  db.pragma(`busy_timeout = ${LONG_BUSY_MS}`);
  const started = performance.now();
  const retriesMs = () => performance.now() - started;
  // Each tick is as long as the longest wait between two retries: one retry at least per tick.
  for (let tick = 0; tick < 10 && failedReports(health).length < 4 && retriesMs() < LONG_BUSY_MS; tick++) {
    clock.tick(FACT_RETRY_MAX_MS);
  }
  const took = retriesMs();
  assert.ok(took < LONG_BUSY_MS, `the retries took ${took.toFixed(0)} ms: one waited for the lock`);
  assert.is(failedReports(health).length, 4, 'three retries, each failed');
  assert.is(db.pragma('busy_timeout', { simple: true }), LONG_BUSY_MS, 'the busy timeout is put back after each');
  const committed = nextLateFacts();
  other.exec('ROLLBACK');
  clock.tick(FACT_RETRY_MAX_MS);
  await committed;
  assert.equal(stored(db), [['session-closed', 1]]);
});

test('health: every failed commit is reported with the outage so far, then one recovery with the late facts', async () => {
  const { db, other } = openPair();
  const { log, health, nextLateFacts } = watchedLog(db);
  other.exec('BEGIN IMMEDIATE');
  await factAsync(log, [closed(1)]);
  await recordAsync(log, [admitted(2)]);
  const committed = nextLateFacts();
  other.exec('ROLLBACK');
  await committed;
  const failed = health.filter((report) => report.kind === 'failed');
  const recovered = health.at(-1);
  assert.ok(failed.length >= 1, 'the failed commit is reported');
  assert.is(health.length, failed.length + 1, 'then one recovery, last');
  const [first] = failed;
  assert.ok(first?.kind === 'failed' && recovered?.kind === 'recovered');
  assert.is(first.failures, 1);
  assert.ok(
    failed.every((report) => report.kind === 'failed' && report.since === first.since),
    'one outage',
  );
  assert.is(first.error.condition, 'locked');
  assert.equal([recovered.failures, recovered.lateFacts, recovered.lostFacts], [failed.length, 1, 0]);
  assert.ok(recovered.outageMs >= 0);
});

test('past the bound, facts are counted and their count is recorded as one facts-lost event, after those kept', async () => {
  const { db, other } = openPair();
  const { log, nextLateFacts } = watchedLog(db, { maxHeldFacts: 2 });
  other.exec('BEGIN IMMEDIATE');
  await factAsync(log, [closed(1), closed(2), closed(3)]);
  await factAsync(log, [closed(4)]);
  assert.is(log.heldFacts, 2);
  const committed = nextLateFacts();
  other.exec('ROLLBACK');
  await committed;
  await factAsync(log, [closed(5)]);
  const events = readEvents(db);
  assert.equal(
    events.map((event) => [event.type, event.session]),
    [
      ['session-closed', 1],
      ['session-closed', 2],
      ['facts-lost', null],
      ['session-closed', 5],
    ],
  );
  const lost = events[2];
  assert.ok(lost?.type === 'facts-lost');
  assert.is(lost.data.count, 2);
  assert.equal(lost.data.types, { 'session-closed': 2 });
});

test('finish commits the held facts at a clean stop; if the history stays locked, it says how many are left', async () => {
  const { db, other } = openPair();
  const { log } = watchedLog(db);
  other.exec('BEGIN IMMEDIATE');
  await factAsync(log, [closed(1)]);
  other.exec('ROLLBACK');
  assert.is(await log.finish(1_000), 0);
  assert.equal(stored(db), [['session-closed', 1]]);

  const again = openPair();
  const second = watchedLog(again.db);
  again.other.exec('BEGIN IMMEDIATE');
  await factAsync(second.log, [closed(2)]);
  assert.is(await second.log.finish(150), 1, 'the fact that could not be committed is counted');
  again.other.exec('ROLLBACK');
});

/** A committer on another "thread" (here: the next turn) that can be told to fail its next commits. */
class FlakyCommitter implements BackgroundCommitter {
  failing = 0;
  readonly #commit: (rows: readonly EventRow[]) => void;
  inFlight = 0;
  maxInFlight = 0;

  constructor(db: Database) {
    this.#commit = rowCommitter(db);
  }

  commit(rows: readonly EventRow[], done: (error: Error | null) => void): void {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    setTimeout(() => {
      this.inFlight--;
      if (this.failing > 0) {
        this.failing--;
        done(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }));
        return;
      }
      this.#commit(rows);
      done(null);
    }, 5);
  }

  async close(): Promise<void> {}
}

test('in the background, a failed commit puts its facts back before the records made while it was in flight', async () => {
  const { db } = openPair();
  const committer = new FlakyCommitter(db);
  const log = new EventLog(db, { background: committer });
  committer.failing = 1;
  const fact = factAsync(log, [closed(1)]);
  await new Promise((resolve) => setImmediate(resolve)); // the fact's commit is in flight
  const answer = recordAsync(log, [admitted(2)]);
  const laterFact = factAsync(log, [closed(3)]);
  assert.instance(await fact, HistoryAppendError);
  assert.instance(await answer, HistoryAppendError, 'made while the failing commit was in flight: failed with it');
  assert.instance(await laterFact, HistoryAppendError);
  await eventually(() => log.heldFacts === 0, 'the retry commits the held facts');
  assert.is(await recordAsync(log, [admitted(4)]), null);
  assert.equal(stored(db), [
    ['session-closed', 1],
    ['session-closed', 3],
    ['session-admitted', 4],
  ]);
  assert.is(committer.maxInFlight, 1, 'one background commit at a time');
});

test.run();
