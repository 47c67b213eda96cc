/**
 * Appending to the history with group commit. Everything recorded during one turn of the event loop is committed in
 * one transaction, scheduled with `setImmediate`; then each caller's `done` runs, in order. The server replies only
 * from inside `done`, so no reply leaves before the event that records it is durable, and a busy turn costs one
 * fsync instead of one per event.
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

type Database = BetterSqlite3.Database;

export type RecordDone = (error: Error | null) => void;

export interface EventLogOptions {
  /** the clock that stamps events recorded without `at`, in milliseconds since the epoch (default Date.now) */
  now?: () => number;
  /** where group commits happen; default: synchronously, on this thread's connection */
  background?: BackgroundCommitter;
}

/** An event turned into its row when recorded, so a caller mutating its object later cannot change the history. */
export type EventRow = [at: number, session: number | null, type: string, data: string];

/**
 * Commits rows somewhere else than on this thread (db/worker-committer.ts: a worker thread with its own connection),
 * so that the transaction and its fsync do not hold up the event loop. Commits finish in the order they were asked.
 */
export interface BackgroundCommitter {
  commit(rows: readonly EventRow[], done: (error: Error | null) => void): void;
  close(): Promise<void>;
}

/** The transaction that appends rows, on `db`; prepared once. */
export function rowCommitter(db: Database): (rows: readonly EventRow[]) => void {
  const insert = db.prepare<EventRow>('INSERT INTO events (at, session, type, data) VALUES (?, ?, ?, ?)');
  const commit = db.transaction((rows: readonly EventRow[]) => {
    for (const row of rows) insert.run(...row);
  });
  return (rows) => commit.immediate(rows);
}

interface Pending {
  rows: EventRow[];
  done: RecordDone;
}

export class EventLog {
  readonly db: Database;
  readonly #now: () => number;
  readonly #commitRows: (rows: readonly EventRow[]) => void;
  readonly #background: BackgroundCommitter | undefined;
  #inFlight = 0;
  #drained: Array<() => void> = [];
  #queue: Pending[] = [];
  #scheduled: NodeJS.Immediate | null = null;
  #closed = false;

  constructor(db: Database, options: EventLogOptions = {}) {
    this.db = db;
    this.#now = options.now ?? Date.now;
    this.#commitRows = rowCommitter(db);
    this.#background = options.background;
  }

  /**
   * Queues events for the next group commit; `done` runs once they are durable, or with the error if not.
   *
   * No events have nothing to make durable, so their `done` gets null even when the commit fails: an answer that
   * records nothing (the ERROR that tells a client the history is unavailable) is not failed by a failing history.
   * They still take their turn in the queue, so a connection's answers keep their order.
   */
  record(events: readonly NewEvent[], done: RecordDone): void {
    if (this.#closed) {
      setImmediate(done, new HistoryClosedError());
      return;
    }
    this.#queue.push({ rows: events.map((event) => this.#toRow(event)), done });
    this.#scheduled ??= setImmediate(() => this.#flush('background'));
  }

  /**
   * Commits the events now, on this thread, after whatever is queued (so positions keep the order of the calls);
   * throws on failure. With a background committer, only when no commit is in flight there (at start, or after
   * drain()), or the order of the history could not be kept.
   */
  recordNow(events: readonly NewEvent[]): void {
    if (this.#closed) throw new HistoryClosedError();
    if (this.#inFlight > 0) throw new Error('recordNow while background commits are in flight: drain() first');
    const outcome: { error: Error | null } = { error: null };
    this.#queue.push({
      rows: events.map((event) => this.#toRow(event)),
      done: (error) => {
        outcome.error = error;
      },
    });
    this.flush();
    if (outcome.error) throw outcome.error;
  }

  /** Commits what is queued now, synchronously on this thread, and calls its dones. */
  flush(): void {
    this.#flush('here');
  }

  /** Resolves once everything recorded so far is committed and its dones have run. */
  drain(): Promise<void> {
    this.#flush('background');
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #flush(where: 'here' | 'background'): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = null;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    const background = this.#background;
    if (where === 'here' || !background) {
      callDones(batch, this.#commitBatch(batch));
      return;
    }
    // Even a batch with no rows goes through the committer, so that its dones keep their place in the order.
    const rows = batch.flatMap((pending) => pending.rows);
    this.#inFlight++;
    background.commit(rows, (error) => {
      this.#inFlight--;
      try {
        callDones(batch, error ? this.#appendError(rows.length, error) : null);
      } finally {
        if (this.#inFlight === 0) for (const resolve of this.#drained.splice(0)) resolve();
      }
    });
  }

  /** Commits what is queued and refuses further records. The database stays open: whoever opened it closes it. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }

  #commitBatch(batch: readonly Pending[]): Error | null {
    if (countRows(batch) === 0) return null;
    try {
      this.#commitRows(batch.flatMap((pending) => pending.rows));
      return null;
    } catch (error) {
      return this.#appendError(countRows(batch), error);
    }
  }

  #appendError(count: number, error: unknown): HistoryAppendError {
    return new HistoryAppendError(count, error, this.db.name, this.#condition(error));
  }

  /** A bare I/O error, explained by the file system when it can: a file that may not be written, a full disk. */
  #condition(error: unknown): StorageCondition | undefined {
    if (storageCondition(sqliteCodeOf(error)) !== 'io-error') return undefined;
    if (writeDenied(this.db.name)) return 'read-only';
    if (diskIsFull(this.db.name)) return 'disk-full';
    return undefined;
  }

  #toRow(event: NewEvent): EventRow {
    return [event.at ?? this.#now(), event.session, event.type, JSON.stringify(event.data)];
  }
}

/**
 * Every done runs even if an earlier one throws; the first throw is rethrown after, so a bug is not swallowed. A
 * record of no events stored nothing that could fail: its done gets null.
 */
function callDones(batch: readonly Pending[], error: Error | null): void {
  let thrown: { error: unknown } | null = null;
  for (const { rows, done } of batch) {
    try {
      done(rows.length === 0 ? null : error);
    } catch (doneError) {
      thrown ??= { error: doneError };
    }
  }
  if (thrown) throw thrown.error;
}

function countRows(batch: readonly Pending[]): number {
  return batch.reduce((count, pending) => count + pending.rows.length, 0);
}
