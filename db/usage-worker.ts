/**
 * [P-46] Inside the usage thread: a read-only connection of its own to the history, and one export at a time. The
 * document is built here (the queries, the projection, JSON, UTF-8, the SHA-256 of [P-24]), so the server's event
 * loop only writes the chunks it gets. Chunks go out as the main thread asks for them (a credit per chunk), so a
 * slow reader holds the export back instead of its chunks piling up in memory.
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './open-database.ts';
import { UsageCache, usageCacheFile } from './usage-cache.ts';
import { type UsageExportOptions, type UsageFilter, usageJsonChunksFromDatabase } from './usage-export.ts';

export interface UsageThreadData {
  file: string;
}

/** From the main thread. */
export type UsageThreadRequest =
  | {
      type: 'start';
      /** echoed in every reply, so that replies of an export cancelled earlier are told apart */
      id: number;
      filter: UsageFilter | undefined;
      chunkBytes: number;
      credit: number;
      generatedAt?: number;
    }
  | { type: 'more'; credit: number }
  | { type: 'cancel' };

/** To the main thread: chunks of the document, then its end (length and hash) or why it failed. */
export type UsageThreadReply =
  | { type: 'chunk'; id: number; bytes: Uint8Array }
  | { type: 'end'; id: number; bytes: number; sha256: string }
  | { type: 'error'; id: number; message: string; code?: string };

const port = parentPort;
if (!port) throw new Error('usage-worker.ts runs in a worker thread');
const { file } = workerData as UsageThreadData;
const db = openDatabase(file, { readonly: true });
const cache = openCache(file);

/** The cache of closed sessions' entries beside the history (usage-cache.ts), or null if it cannot be opened there. */
function openCache(historyFile: string): UsageCache | null {
  try {
    return new UsageCache(usageCacheFile(historyFile));
  } catch {
    return null; // a folder the server may not write: every export reads the history instead
  }
}

/** An export from the cache, or from the history alone when the cache fails (it is only ever a shortcut). */
function* exportUsage(options: UsageExportOptions): Generator<string, void, undefined> {
  // One client's entry is read straight from its span of the history (a few ms); the cache serves the rest.
  if (cache && options.filter?.session === undefined) {
    let first: IteratorResult<string, void>;
    const pieces = cache.export(db, options);
    try {
      first = pieces.next(); // the catch-up runs here
    } catch {
      yield* usageJsonChunksFromDatabase(db, options);
      return;
    }
    if (!first.done) yield first.value;
    yield* pieces;
    return;
  }
  yield* usageJsonChunksFromDatabase(db, options);
}

interface Export {
  id: number;
  pieces: Generator<string, void, undefined>;
  hash: ReturnType<typeof createHash>;
  total: number;
  chunkBytes: number;
  credit: number;
  /** encoded text not yet sent: at most one chunk's worth */
  pending: Buffer | null;
}

let current: Export | null = null;

port.on('message', (message: UsageThreadRequest) => {
  if (message.type === 'start') {
    finish();
    const options = { filter: message.filter, ...(message.generatedAt ? { generatedAt: message.generatedAt } : {}) };
    current = {
      id: message.id,
      pieces: exportUsage(options),
      hash: createHash('sha256'),
      total: 0,
      chunkBytes: message.chunkBytes,
      credit: message.credit,
      pending: null,
    };
  } else if (message.type === 'more') {
    if (!current) return;
    current.credit += message.credit;
  } else {
    finish();
    return;
  }
  pump();
});
port.once('close', () => {
  finish();
  cache?.close();
  db.close();
});

/** Sends chunks while the main thread has credit for them; the document's end when the projection is done. */
function pump(): void {
  const job = current;
  if (!job) return;
  try {
    while (job.credit > 0) {
      const chunk = nextChunk(job);
      if (chunk === null) {
        current = null;
        port?.postMessage({
          type: 'end',
          id: job.id,
          bytes: job.total,
          sha256: job.hash.digest('hex'),
        } satisfies UsageThreadReply);
        return;
      }
      job.credit--;
      job.hash.update(chunk);
      job.total += chunk.length;
      port?.postMessage({ type: 'chunk', id: job.id, bytes: chunk } satisfies UsageThreadReply, [
        chunk.buffer as ArrayBuffer,
      ]);
    }
  } catch (error) {
    current = null;
    job.pieces.return();
    const { message, code } = error as { message: string; code?: string };
    port?.postMessage({
      type: 'error',
      id: job.id,
      message,
      ...(typeof code === 'string' ? { code } : {}),
    } satisfies UsageThreadReply);
  }
}

/** Up to chunkBytes of the document, in a buffer of its own (it is transferred); null at the end. */
function nextChunk(job: Export): Buffer | null {
  let buffered = job.pending;
  job.pending = null;
  while (buffered === null || buffered.length < job.chunkBytes) {
    const next = job.pieces.next();
    if (next.done) break;
    const encoded = Buffer.from(next.value, 'utf8');
    buffered = buffered === null ? encoded : Buffer.concat([buffered, encoded]);
  }
  if (buffered === null || buffered.length === 0) return null;
  if (buffered.length > job.chunkBytes) {
    job.pending = Buffer.from(buffered.subarray(job.chunkBytes));
    buffered = buffered.subarray(0, job.chunkBytes);
  }
  // A buffer of its own, starting at offset 0, so that its ArrayBuffer can be transferred.
  const own = Buffer.alloc(buffered.length);
  buffered.copy(own);
  return own;
}

/** Ends the export in progress, if any: its statements are reset, so the connection holds no snapshot. */
function finish(): void {
  current?.pieces.return();
  current = null;
}
