/**
 * [P-46] The server's side of the usage threads (usage-worker.ts): each export runs on a thread with its own
 * read-only connection, so a long document never holds up the event loop. A thread is kept for the next export;
 * exports at the same time get a thread each. The main thread reads an export chunk by chunk, and each chunk it
 * takes lets the thread send one more: at most `window` chunks are ever on their way.
 */
import { Worker } from 'node:worker_threads';
import type { UsageFilter } from './usage-export.ts';
import type { UsageThreadData, UsageThreadReply, UsageThreadRequest } from './usage-worker.ts';

export type UsageRead = { chunk: Buffer } | { end: { bytes: number; sha256: string } };

/** One export in progress: read it to its end, or cancel it. */
export interface UsageExport {
  /** the next chunk of the document, or its end (length and SHA-256); rejects if the export failed */
  read(): Promise<UsageRead>;
  /** stop early (the client went away): the thread drops the export */
  cancel(): void;
}

export interface UsageThreadsOptions {
  /** the history file */
  file: string;
  /** chunks on their way at once (default 4) */
  window?: number;
}

export class UsageThreads {
  readonly #file: string;
  readonly #window: number;
  readonly #idle: Worker[] = [];
  readonly #all = new Set<Worker>();
  #closed = false;
  #exports = 0;

  constructor(options: UsageThreadsOptions) {
    this.#file = options.file;
    this.#window = options.window ?? 4;
  }

  /** Starts an export of the document, in chunks of at most `chunkBytes`. */
  export(filter: UsageFilter | undefined, chunkBytes: number, generatedAt?: number): UsageExport {
    if (this.#closed) throw new Error('the usage threads are closed');
    const worker = this.#idle.pop() ?? this.#spawn();
    const id = ++this.#exports;
    const replies: UsageThreadReply[] = [];
    let waiting: { resolve: (read: UsageRead) => void; reject: (error: Error) => void } | null = null;
    let failure: Error | null = null;
    let finished = false;
    const settle = () => {
      if (!waiting) return;
      const reply = replies.shift();
      if (reply) {
        const { resolve, reject } = waiting;
        waiting = null;
        if (reply.type === 'chunk') {
          worker.postMessage({ type: 'more', credit: 1 } satisfies UsageThreadRequest);
          resolve({ chunk: Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength) });
        } else if (reply.type === 'end') resolve({ end: { bytes: reply.bytes, sha256: reply.sha256 } });
        else reject(Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {}));
      } else if (failure) {
        const { reject } = waiting;
        waiting = null;
        reject(failure);
      }
    };
    const onMessage = (reply: UsageThreadReply) => {
      if (reply.id !== id) return; // a reply of an export cancelled before this one
      replies.push(reply);
      if (reply.type !== 'chunk') done(true);
      settle();
    };
    const onFailure = (error: Error) => {
      failure = error;
      done(false);
      settle();
    };
    const onExit = () => onFailure(new Error('the usage thread stopped'));
    const done = (reusable: boolean) => {
      if (finished) return;
      finished = true;
      worker.off('message', onMessage);
      worker.off('error', onFailure);
      worker.off('exit', onExit);
      if (reusable && !this.#closed && this.#idle.length === 0) this.#idle.push(worker);
      else this.#stop(worker);
    };
    worker.on('message', onMessage);
    worker.on('error', onFailure);
    worker.on('exit', onExit);
    const start: UsageThreadRequest = {
      type: 'start',
      id,
      filter,
      chunkBytes,
      credit: this.#window,
      ...(generatedAt ? { generatedAt } : {}),
    };
    worker.postMessage(start);
    return {
      read: () =>
        new Promise<UsageRead>((resolve, reject) => {
          if (waiting) throw new Error('one read at a time');
          waiting = { resolve, reject };
          settle();
        }),
      cancel: () => {
        if (finished) return;
        // The thread drops the export; the replies it already sent are ignored.
        worker.postMessage({ type: 'cancel' } satisfies UsageThreadRequest);
        failure = new Error('the usage export was cancelled');
        done(true);
        settle();
      },
    };
  }

  /** Stops every thread. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#idle.length = 0;
    await Promise.all([...this.#all].map((worker) => worker.terminate()));
    this.#all.clear();
  }

  #spawn(): Worker {
    const workerData: UsageThreadData = { file: this.#file };
    const worker = new Worker(new URL('./usage-worker.js', import.meta.url), { workerData });
    worker.unref();
    this.#all.add(worker);
    worker.once('exit', () => {
      this.#all.delete(worker);
      const index = this.#idle.indexOf(worker);
      if (index >= 0) this.#idle.splice(index, 1);
    });
    return worker;
  }

  #stop(worker: Worker): void {
    this.#all.delete(worker);
    void worker.terminate();
  }
}
