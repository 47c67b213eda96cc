/**
 * Inside the worker thread: a connection of its own to the history, and one transaction per batch of rows the main
 * thread sends. Batches are committed in the order they arrive and answered in that order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase, type Synchronous } from './open-database.ts';
import { type EventRow, rowCommitter } from './row-committer.ts';

export interface CommitThreadData {
  file: string;
  synchronous: Synchronous;
  busyTimeoutMs: number;
}

export interface CommitOutcome {
  error: { message: string; code?: string } | null;
}

const port = parentPort;
if (!port) throw new Error('commit-thread.ts runs in a worker thread');
const { file, synchronous, busyTimeoutMs } = workerData as CommitThreadData;
const db = openDatabase(file, { synchronous, busyTimeoutMs });
const commit = rowCommitter(db);

port.on('message', (rows: EventRow[]) => {
  let outcome: CommitOutcome = { error: null };
  try {
    if (rows.length > 0) commit(rows);
  } catch (error) {
    const { message, code } = error as { message: string; code?: string };
    outcome = { error: { message, ...(typeof code === 'string' ? { code } : {}) } };
  }
  port.postMessage(outcome);
});
port.once('close', () => db.close());
