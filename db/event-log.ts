/**
 * Appending to the history with group commit. Everything recorded during one turn of the event loop is committed in
 * one transaction, scheduled with `setImmediate`; then each caller's `done` runs, in order. The server replies only
 * from inside `done`, so no reply leaves before the event that records it is durable, and a busy turn costs one
 * fsync instead of one per event.
 *
 * Two kinds of records. `record` is for the events of an answer about to be sent: if their commit fails, the answer
 * is not sent and the events are discarded (what they describe did not happen). `recordFact` is for what happened
 * whatever the history says (a session closed, a connection rejected): if its commit fails, the fact is kept in
 * memory, in order, and committed before anything recorded after it once the history works again (retried on a
 * timer, 100 ms after the failure and doubling up to 1 s), or at a clean stop; facts a clean stop still cannot
 * commit when its deadline passes are written beside the history (db/held-facts.ts), for the next start to commit
 * first. While held facts wait for their retry, records fail at once without an attempt: the history is known to
 * fail, and each attempt would wait out the busy timeout or write every held row again. A bounded number of facts
 * is kept; past the bound they are counted, and the count goes on record as one `facts-lost` event when the history
 * is back.
 *
 * One background commit is in flight at a time: records made meanwhile wait for it and go together in the next one,
 * so a failed commit can put its facts back ahead of everything recorded after them.
 */

import type BetterSqlite3 from 'better-sqlite3';
import {
  HistoryAppendError,
  HistoryClosedError,
  type StorageCondition,
  sqliteCodeOf,
  storageCondition,
} from './errors.ts';
import type { NewEvent } from './events.ts';
import { diskIsFull, writeDenied } from './file-system.ts';
import { heldFactsFile, writeHeldFacts } from './held-facts.ts';
import { servedImageRow } from './image-versions.ts';
import { type EventRow, rowCommitter } from './row-committer.ts';

type Database = BetterSqlite3.Database;

export type RecordDone = (error: Error | null) => void;

export interface EventLogOptions {
  /** the clock that stamps events recorded without `at`, in milliseconds since the epoch (default Date.now) */
  now?: () => number;
  /**
   * where group commits happen; default: synchronously, on this thread's connection. With no local database (a
   * history on a database server, db/postgres/), every commit goes here, a clean stop's too.
   */
  background?: BackgroundCommitter;
  /** the history's name in error messages when there is no local database (a URL without its password) */
  location?: string;
  /** what a failed commit of the background committer means, in the operator's terms (default: from SQLite's code) */
  condition?: (error: unknown) => StorageCondition | undefined;
  /** how many facts to keep in memory at most while the history fails (default DEFAULT_MAX_HELD_FACTS) */
  maxHeldFacts?: number;
  /** told of each failed commit and of the recovery (the operator's log throttles them) */
  onHealth?: (health: HistoryHealth) => void;
  /** told of facts committed after their first attempt failed, in their order, once they are on record */
  onLateFacts?: (events: readonly NewEvent[]) => void;
  /**
   * [P-90] told of each group committed: how long its commit took (ms, from handing it to the committer until it is
   * durable) and how many rows it held (operator metrics)
   */
  onCommitted?: (durationMs: number, rows: number) => void;
  /**
   * the timer of the retries of held facts while the log runs (default: setTimeout and clearTimeout); a test passes
   * one it advances. A clean stop's retries (finish) wait on real time, against their deadline.
   */
  retryTimer?: RetryTimer;
}

/** A one-shot timer: `set` returns a handle that `clear` takes. */
export interface RetryTimer {
  set(run: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

const GLOBAL_TIMER: RetryTimer = {
  set: (run, delayMs) => setTimeout(run, delayMs),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Commits rows somewhere else than on this thread (db/worker-committer.ts: a worker thread with its own connection),
 * so that the transaction and its fsync do not hold up the event loop. Commits finish in the order they were asked.
 */
export interface BackgroundCommitter {
  commit(rows: readonly EventRow[], done: (error: Error | null) => void): void;
  close(): Promise<void>;
}

interface Pending {
  events: readonly NewEvent[];
  rows: EventRow[];
  /** a fact is kept when its commit fails; an answer's events are discarded with the answer */
  fact: boolean;
  done: RecordDone | undefined;
}

/** A fact whose commit failed, waiting for the history to come back. */
interface HeldFact {
  event: NewEvent;
  row: EventRow;
}

/** Facts that could not even be kept (past the bound), counted, and recorded as one `facts-lost` event later. */
interface LostFacts {
  count: number;
  since: number;
  until: number;
  types: Record<string, number>;
}

/** How the history is doing, told to the operator's log (src/server/history-outage-log.ts). */
export type HistoryHealth =
  | {
      kind: 'failed';
      error: HistoryAppendError;
      /** failed commits since the outage began, this one included */
      failures: number;
      /** when the outage began, by the log's clock */
      since: number;
      /** facts kept in memory, waiting for the history */
      heldFacts: number;
      /** facts dropped past the bound since the outage began */
      lostFacts: number;
    }
  | {
      kind: 'recovered';
      /** how long the outage lasted, in milliseconds */
      outageMs: number;
      failures: number;
      /** facts committed late, now, in their order */
      lateFacts: number;
      /** facts that could not be kept (past the bound): their count is on record as one facts-lost event */
      lostFacts: number;
    };

/** What a clean stop did with the facts it could not commit: the file they are in, or the error that kept them out. */
export interface LeftBehind {
  /** how many facts (a facts-lost count among them counts as one) */
  facts: number;
  /** the side file beside the history */
  file: string;
  /** why the side file could not be written (the facts are lost); null when they are in it */
  error: Error | null;
  /** the history was lost (EventLog.refuse): the facts are not kept anywhere */
  refused: boolean;
}

/** How many facts are kept in memory at most while the history cannot be written (about 200 bytes each). */
export const DEFAULT_MAX_HELD_FACTS = 10_000;
/** The first retry of held facts comes this long after a failure, then twice as long each time, up to the max. */
export const FACT_RETRY_MIN_MS = 100;
export const FACT_RETRY_MAX_MS = 1_000;

export class EventLog {
  readonly #db: Database | null;
  readonly #location: string;
  readonly #describe: ((error: unknown) => StorageCondition | undefined) | undefined;
  readonly #now: () => number;
  readonly #commitRows: ((rows: readonly EventRow[]) => void) | null;
  #background: BackgroundCommitter | undefined;
  readonly #maxHeldFacts: number;
  readonly #onHealth: ((health: HistoryHealth) => void) | undefined;
  readonly #onLateFacts: ((events: readonly NewEvent[]) => void) | undefined;
  readonly #onCommitted: ((durationMs: number, rows: number) => void) | undefined;
  #inFlight = 0;
  /** rows of the background commit in flight */
  #inFlightRows = 0;
  #drained: Array<() => void> = [];
  #queue: Pending[] = [];
  #held: HeldFact[] = [];
  #lost: LostFacts | null = null;
  #outage: { since: number; failures: number; lostFacts: number } | null = null;
  readonly #retryTimer: RetryTimer;
  #retry: unknown = null;
  #retryDelayMs = FACT_RETRY_MIN_MS;
  #scheduled: NodeJS.Immediate | null = null;
  #closed = false;
  #finishing = false;
  /** a retry of held facts is being made (on this thread it does not wait for a lock) */
  #retrying = false;
  /** the error of the last failed commit, while the history is failing */
  #lastError: HistoryAppendError | null = null;
  /** set by refuse(): every record fails with it, nothing is committed any more */
  #refused: Error | null = null;
  #leftBehind: LeftBehind | null = null;

  /** `db` null: no local database, every commit goes to `options.background` (required then). */
  constructor(db: Database | null, options: EventLogOptions = {}) {
    if (!db && !options.background) throw new Error('an event log without a local database needs a committer');
    this.#db = db;
    this.#location = db?.name ?? options.location ?? '';
    this.#describe = options.condition;
    this.#now = options.now ?? Date.now;
    this.#commitRows = db ? rowCommitter(db) : null;
    this.#background = options.background;
    this.#maxHeldFacts = options.maxHeldFacts ?? DEFAULT_MAX_HELD_FACTS;
    this.#onHealth = options.onHealth;
    this.#onLateFacts = options.onLateFacts;
    this.#onCommitted = options.onCommitted;
    this.#retryTimer = options.retryTimer ?? GLOBAL_TIMER;
  }

  /**
   * Records the events of an answer about to be sent: queues them for the next group commit; `done` runs once they
   * are durable, or with the error if not. On failure these events are discarded (the answer is not sent, so what
   * they describe did not happen).
   *
   * No events have nothing to make durable, so their `done` gets null even when the commit fails: an answer that
   * records nothing (the ERROR that tells a client the history is unavailable) is not failed by a failing history.
   * They still take their turn in the queue, so a connection's answers keep their order.
   */
  record(events: readonly NewEvent[], done: RecordDone): void {
    this.#enqueue(events, false, done);
  }

  /**
   * Records facts: things that happened whatever the history says (a session closed, a connection rejected or
   * dropped, a transfer that did not end whole, the server stopping). `done`, if given, runs after the first
   * attempt to commit them: with null if they are durable, or with the error if not; in that case they are not
   * lost but kept in memory, in order, and committed before anything recorded after them, as soon as the history
   * works again (retried on a timer; records made before the retry fail at once) or at a clean stop (`finish`).
   * At most `maxHeldFacts` are kept; past that, facts are counted instead, and the count is recorded as one
   * `facts-lost` event once the history is back.
   */
  recordFact(events: readonly NewEvent[], done?: RecordDone): void {
    this.#enqueue(events, true, done);
  }

  /** The local database (SQLite); throws for a log whose history is on a database server. */
  get db(): Database {
    if (!this.#db) throw new Error(`the history ${this.#location} has no local database`);
    return this.#db;
  }

  /**
   * The history is lost (deleted or replaced under the server): from now on every record fails with `error`,
   * without an attempt, so no answer is sent; facts are held, and a clean stop does not write them anywhere.
   */
  refuse(error: Error): void {
    this.#refused ??= error;
    this.#stopRetrying();
  }

  /** After finish(): the facts it could not commit, and where they went; null when there were none. */
  get leftBehind(): LeftBehind | null {
    return this.#leftBehind;
  }

  /** Facts kept in memory because their commit failed, not yet on record. */
  get heldFacts(): number {
    return this.#held.length;
  }

  /** [P-90] Events not yet on record: queued for the next commit, in the commit in flight, and held facts. */
  get waitingEvents(): number {
    return this.#queue.reduce((count, pending) => count + pending.rows.length, this.#held.length + this.#inFlightRows);
  }

  #enqueue(events: readonly NewEvent[], fact: boolean, done: RecordDone | undefined): void {
    if (this.#closed) {
      if (done) setImmediate(done, new HistoryClosedError());
      return;
    }
    this.#queue.push({ events, rows: events.map((event) => this.#toRow(event)), fact, done });
    this.#scheduled ??= setImmediate(() => this.#flush('background'));
  }

  /**
   * Commits the events now, on this thread, after whatever is queued and held (so positions keep the order of the
   * calls); throws on failure. With a background committer, only when no commit is in flight there (at start, or
   * after drain()), or the order of the history could not be kept.
   */
  recordNow(events: readonly NewEvent[]): void {
    if (this.#closed) throw new HistoryClosedError();
    if (!this.#db) throw new Error('recordNow needs a local database: record() and wait for done');
    if (this.#inFlight > 0) throw new Error('recordNow while background commits are in flight: drain() first');
    const outcome: { error: Error | null } = { error: null };
    this.#queue.push({
      events,
      rows: events.map((event) => this.#toRow(event)),
      fact: false,
      done: (error) => {
        outcome.error = error;
      },
    });
    this.flush();
    if (outcome.error) throw outcome.error;
  }

  /**
   * Commits what is queued (and held) now, synchronously on this thread, and calls its dones. Without a local
   * database, starts that commit on the committer instead (drain() waits for it).
   */
  flush(): void {
    this.#flush('here');
  }

  /**
   * Resolves once everything recorded so far has had its commit attempted and its dones have run (held facts may
   * remain: see heldFacts).
   */
  drain(): Promise<void> {
    this.#flush('background');
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /**
   * A clean stop: commits what is queued and held on this thread, retrying while the history fails until
   * `deadlineMs` has passed, then closes the log. Resolves with the number of facts that could not be committed
   * (0 unless the history stayed unavailable to the end). Call after drain(), once the background committer is
   * closed.
   */
  async finish(deadlineMs: number): Promise<number> {
    if (this.#closed) return 0;
    // The background committer is closed by now: every commit from here on is made on this thread. Without a local
    // database, the committer is the only way to the history: it stays open until this resolves.
    if (this.#db) this.#background = undefined;
    this.#finishing = true;
    const start = performance.now();
    let delayMs = FACT_RETRY_MIN_MS;
    const commit = async () => {
      this.flush();
      if (!this.#db) await this.drain();
    };
    await commit();
    while (!this.#refused && (this.#held.length > 0 || this.#lost)) {
      const left = deadlineMs - (performance.now() - start);
      if (left <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(delayMs, left)));
      delayMs = Math.min(delayMs * 2, FACT_RETRY_MAX_MS);
      await commit();
    }
    const unrecorded = this.#held.length + (this.#lost?.count ?? 0) + countFacts(this.#queue);
    if (this.#db && (this.#held.length > 0 || this.#lost)) this.#leaveBehind(this.#db.name);
    this.#closed = true;
    this.#stopRetrying();
    return unrecorded;
  }

  /** The held facts (and the count of those lost past the bound), in their order, written beside the history. */
  #leaveBehind(historyFile: string): void {
    const events = this.#held.map(({ event, row }) => ({ ...event, at: row[0] }) as NewEvent);
    if (this.#lost) events.push(lostFactsEvent(this.#lost, this.#now()));
    const file = heldFactsFile(historyFile);
    if (this.#refused) {
      this.#leftBehind = { facts: events.length, file, error: this.#refused, refused: true };
      return;
    }
    try {
      writeHeldFacts(file, events);
      this.#leftBehind = { facts: events.length, file, error: null, refused: false };
    } catch (error) {
      this.#leftBehind = { facts: events.length, file, error: error as Error, refused: false };
    }
  }

  #flush(where: 'here' | 'background'): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = null;
    const background = where === 'background' || !this.#db ? this.#background : undefined;
    // One background commit at a time: the next group waits for it, so that a failed one can put its facts back
    // before anything recorded later is committed.
    if (background && this.#inFlight > 0) return;
    // While held facts wait for their retry, the history is known to fail: records fail at once, without an attempt
    // (each would wait out the busy timeout, or write thousands of held rows, to fail again). The retry's own
    // flush, and a flush on this thread (a clean stop), do attempt.
    const failFast = where === 'background' && this.#retry !== null && this.#lastError !== null;
    if (!failFast) this.#stopRetrying();
    const batch = this.#queue;
    this.#queue = [];
    const carried = this.#held;
    this.#held = [];
    const lost = this.#lost;
    this.#lost = null;
    const rows = carried.map((held) => held.row);
    const lostEvent = lost ? lostFactsEvent(lost, this.#now()) : null;
    if (lostEvent) rows.push(this.#toRow(lostEvent));
    for (const pending of batch) rows.push(...pending.rows);
    if ((failFast || this.#refused) && rows.length > 0) {
      this.#settle(batch, carried, lost, lostEvent, this.#refused ?? this.#lastError, false);
      return;
    }
    if (rows.length === 0 || !background) {
      this.#settle(batch, carried, lost, lostEvent, rows.length === 0 ? null : this.#commitHere(rows));
      return;
    }
    this.#inFlight++;
    this.#inFlightRows = rows.length;
    const started = performance.now();
    background.commit(rows, (error) => {
      this.#inFlight--;
      this.#inFlightRows = 0;
      if (!error) this.#onCommitted?.(performance.now() - started, rows.length);
      try {
        this.#settle(batch, carried, lost, lostEvent, error ? this.#appendError(rows.length, error) : null);
      } finally {
        if (this.#queue.length > 0) this.#flush('background');
        else this.#scheduleRetry(); // a retry that fell due while this commit was in flight
        if (this.#inFlight === 0) for (const resolve of this.#drained.splice(0)) resolve();
      }
    });
  }

  /** After a commit of held facts (carried), the lost-facts count, and a batch: report, keep what must be kept. */
  #settle(
    batch: readonly Pending[],
    carried: readonly HeldFact[],
    lost: LostFacts | null,
    lostEvent: NewEvent | null,
    error: Error | null,
    attempted = true,
  ): void {
    if (!error) {
      this.#lastError = null;
      if (carried.length > 0 || lostEvent) {
        const late = carried.map((held) => held.event);
        if (lostEvent) late.push(lostEvent);
        this.#onLateFacts?.(late);
      }
      if (this.#outage && (batch.some((pending) => pending.rows.length > 0) || carried.length > 0 || lostEvent)) {
        const { since, failures, lostFacts } = this.#outage;
        this.#outage = null;
        this.#retryDelayMs = FACT_RETRY_MIN_MS;
        this.#onHealth?.({
          kind: 'recovered',
          outageMs: this.#now() - since,
          failures,
          lateFacts: carried.length,
          lostFacts,
        });
      }
      callDones(batch, null);
      return;
    }
    // Keep the facts, in their order: those carried first, then the ones of this batch; past the bound, count them.
    const kept: HeldFact[] = [...carried];
    let lostNow = lost;
    for (const pending of batch) {
      if (!pending.fact) continue;
      pending.events.forEach((event, index) => {
        const row = pending.rows[index] as EventRow;
        if (kept.length < this.#maxHeldFacts && !lostNow) kept.push({ event, row });
        else lostNow = countLost(lostNow, event.type, row[0]);
      });
    }
    this.#held = kept.concat(this.#held);
    this.#lost = lostNow && this.#lost ? mergeLost(lostNow, this.#lost) : (lostNow ?? this.#lost);
    const appendError = error instanceof HistoryAppendError ? error : this.#appendError(0, error);
    this.#lastError = appendError;
    const outage = this.#outage ?? { since: this.#now(), failures: 0, lostFacts: 0 };
    this.#outage = outage;
    outage.lostFacts = this.#lost?.count ?? 0;
    // Records failed at once, without an attempt (a retry is due), are not counted or reported as another failure.
    if (attempted) {
      outage.failures++;
      this.#onHealth?.({
        kind: 'failed',
        error: appendError,
        failures: outage.failures,
        since: outage.since,
        heldFacts: this.#held.length,
        lostFacts: outage.lostFacts,
      });
    }
    try {
      callDones(batch, error);
    } finally {
      this.#scheduleRetry();
    }
  }

  /** Held facts are retried on a timer (doubling up to FACT_RETRY_MAX_MS); records fail at once until then. */
  #scheduleRetry(): void {
    if (this.#closed || this.#finishing || this.#refused || (this.#held.length === 0 && !this.#lost)) return;
    if (this.#retry !== null) return;
    const delay = this.#retryDelayMs;
    this.#retryDelayMs = Math.min(delay * 2, FACT_RETRY_MAX_MS);
    this.#retry = this.#retryTimer.set(() => {
      this.#retry = null;
      this.#retrying = true;
      try {
        this.#flush('background');
      } finally {
        this.#retrying = false;
      }
    }, delay);
  }

  #stopRetrying(): void {
    if (this.#retry !== null) this.#retryTimer.clear(this.#retry);
    this.#retry = null;
  }

  /**
   * Commits what is queued and refuses further records. The database stays open: whoever opened it closes it.
   * Facts that still cannot be committed are lost: a clean stop calls finish() instead.
   */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#stopRetrying();
  }

  #commitHere(rows: readonly EventRow[]): Error | null {
    if (!this.#db || !this.#commitRows) return this.#appendError(rows.length, new Error('no local database'));
    const db = this.#db;
    // A retry on the event loop does not wait for another process's lock: it looks, and tries again later. Only the
    // first failure of an outage waits out the busy timeout; retries never stall the loop.
    const busyTimeoutMs = this.#retrying ? (db.pragma('busy_timeout', { simple: true }) as number) : null;
    if (busyTimeoutMs !== null) db.pragma('busy_timeout = 0');
    try {
      const started = performance.now();
      this.#commitRows(rows);
      this.#onCommitted?.(performance.now() - started, rows.length);
      return null;
    } catch (error) {
      return this.#appendError(rows.length, error);
    } finally {
      if (busyTimeoutMs !== null) db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    }
  }

  #appendError(count: number, error: unknown): HistoryAppendError {
    return new HistoryAppendError(count, error, this.#location, this.#condition(error));
  }

  /** A bare I/O error, explained by the file system when it can: a file that may not be written, a full disk. */
  #condition(error: unknown): StorageCondition | undefined {
    if (this.#describe) return this.#describe(error);
    if (!this.#db || storageCondition(sqliteCodeOf(error)) !== 'io-error') return undefined;
    if (writeDenied(this.#db.name)) return 'read-only';
    if (diskIsFull(this.#db.name)) return 'disk-full';
    return undefined;
  }

  #toRow(event: NewEvent): EventRow {
    const at = event.at ?? this.#now();
    // The most frequent row is left for the committer to encode (compact on SQLite, JSON on PostgreSQL).
    if (event.type === 'image-served') return [at, event.session, event.type, servedImageRow(event.data)];
    return [at, event.session, event.type, JSON.stringify(event.data)];
  }
}

function countFacts(queue: readonly Pending[]): number {
  return queue.reduce((count, pending) => count + (pending.fact ? pending.events.length : 0), 0);
}

/** The one event that stands for facts dropped past the bound: how many, of which kinds, from when to when. */
function lostFactsEvent(lost: LostFacts, now: number): NewEvent {
  return {
    session: null,
    type: 'facts-lost',
    at: now,
    data: { count: lost.count, since: lost.since, until: lost.until, types: { ...lost.types } },
  };
}

function countLost(lost: LostFacts | null, type: string, at: number): LostFacts {
  const counted = lost ?? { count: 0, since: at, until: at, types: {} };
  counted.count++;
  counted.since = Math.min(counted.since, at);
  counted.until = Math.max(counted.until, at);
  counted.types[type] = (counted.types[type] ?? 0) + 1;
  return counted;
}

function mergeLost(older: LostFacts, newer: LostFacts): LostFacts {
  const types = { ...older.types };
  for (const [type, count] of Object.entries(newer.types)) types[type] = (types[type] ?? 0) + count;
  return {
    count: older.count + newer.count,
    since: Math.min(older.since, newer.since),
    until: Math.max(older.until, newer.until),
    types,
  };
}

/**
 * Every done runs even if an earlier one throws; the first throw is rethrown after, so a bug is not swallowed. A
 * record of no events stored nothing that could fail: its done gets null.
 */
function callDones(batch: readonly Pending[], error: Error | null): void {
  let thrown: { error: unknown } | null = null;
  for (const { rows, done } of batch) {
    try {
      done?.(rows.length === 0 ? null : error);
    } catch (doneError) {
      thrown ??= { error: doneError };
    }
  }
  if (thrown) throw thrown.error;
}
