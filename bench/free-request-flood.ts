/**
 * [P-48] [P-49] History growth under a flood of requests that cost no quota: a server process with its default
 * budget, one client sending such requests as fast as it can (16 in flight), for a few seconds per kind of flood.
 * After each flood the history is checkpointed and its size read: bytes of history per second of flood, per hour.
 */
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { openDatabase } from '../db/open-database.ts';
import { ServerError } from '../src/protocol/index.ts';
import { startImgcacheServer } from './server-processes.ts';

export interface FloodRun {
  /** what the client sent */
  kind: string;
  seconds: number;
  /** answers received, per second */
  answersPerSecond: number;
  /** of them, refused `rate-limited` */
  rateLimited: number;
  /** rows the history gained */
  rows: number;
  /** bytes the history file gained (after a checkpoint), per second of flood and per hour */
  bytesPerSecond: number;
  bytesPerHour: number;
}

export interface FloodOptions {
  cacheDir: string;
  database: string;
  tiersFile: string;
  /** how long each flood lasts */
  durationMs: number;
}

const KINDS: Array<{ kind: string; request: (index: number) => (client: ImgcacheClient) => Promise<unknown> }> = [
  {
    kind: 'the same missing image',
    request: () => (client) => client.getImage('missing.png', { write: () => undefined }),
  },
  {
    kind: 'a different missing image each time',
    request: (index) => (client) => client.getImage(`missing-${index}.png`, { write: () => undefined }),
  },
  { kind: 'list', request: () => (client) => client.list() },
];

export async function measureFreeRequestFlood(options: FloodOptions): Promise<FloodRun[]> {
  const server = await startImgcacheServer({
    cacheDir: options.cacheDir,
    database: options.database,
    capacity: 3,
    tiersFile: options.tiersFile,
    logLevel: 'warn',
  });
  const runs: FloodRun[] = [];
  try {
    for (const { kind, request } of KINDS) {
      const before = historySize(options.database);
      const client = await ImgcacheClient.connect({ port: server.port });
      let answers = 0;
      let rateLimited = 0;
      let index = 0;
      const startedAt = performance.now();
      const until = startedAt + options.durationMs;
      const flood = async () => {
        while (performance.now() < until) {
          try {
            await request(index++)(client);
          } catch (error) {
            if (!(error instanceof ServerError) || error.fatal) throw error;
            if (error.code === 'rate-limited') rateLimited++;
          }
          answers++;
        }
      };
      await Promise.all(Array.from({ length: 16 }, flood));
      const seconds = (performance.now() - startedAt) / 1000;
      client.close();
      const after = historySize(options.database);
      const bytesPerSecond = Math.max(0, after.bytes - before.bytes) / seconds;
      runs.push({
        kind,
        seconds,
        answersPerSecond: answers / seconds,
        rateLimited,
        rows: after.rows - before.rows,
        bytesPerSecond,
        bytesPerHour: bytesPerSecond * 3600,
      });
    }
  } finally {
    await server.stop();
  }
  return runs;
}

/** Rows and bytes of the history once its WAL is written back (the file as it would stay on the disk). */
function historySize(file: string): { rows: number; bytes: number } {
  const db = openDatabase(file, { busyTimeoutMs: 5_000 });
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
    const rows = db.prepare<[], number>('SELECT count(*) FROM events').pluck().get() ?? 0;
    return { rows, bytes: statSync(file).size };
  } finally {
    db.close();
  }
}
