/**
 * Group commits on a worker thread: the main thread keeps serving while SQLite writes (and, with synchronous=FULL,
 * waits for the disk). The worker has its own connection to the same file; WAL lets the main thread's readers go on.
 */
import { Worker } from 'node:worker_threads';
import type { CommitOutcome, CommitThreadData } from './commit-thread.ts';
import type { BackgroundCommitter } from './event-log.ts';
import type { EventRow } from './row-committer.ts';

export class WorkerCommitter implements BackgroundCommitter {
  readonly #worker: Worker;
  readonly #waiting: Array<(error: Error | null) => void> = [];
  #failure: Error | null = null;

  constructor(data: CommitThreadData) {
    this.#worker = new Worker(new URL('./commit-thread.js', import.meta.url), { workerData: data });
    this.#worker.on('message', (outcome: CommitOutcome) => {
      const done = this.#waiting.shift();
      done?.(outcome.error ? Object.assign(new Error(outcome.error.message), { code: outcome.error.code }) : null);
    });
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', () => this.#fail(new Error('the history thread stopped')));
  }

  commit(rows: readonly EventRow[], done: (error: Error | null) => void): void {
    if (this.#failure) {
      setImmediate(done, this.#failure);
      return;
    }
    this.#waiting.push(done);
    this.#worker.postMessage(rows);
  }

  /** Resolves once the thread has opened the history and answers (an empty commit went through). */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => this.commit([], (error) => (error ? reject(error) : resolve())));
  }

  async close(): Promise<void> {
    this.#failure ??= new Error('the history thread is closed');
    await this.#worker.terminate();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const done of this.#waiting.splice(0)) done(this.#failure);
  }
}
