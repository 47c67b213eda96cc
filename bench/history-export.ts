/**
 * The usage export at scale: builds a history of N events (sessions of an admission, image requests and a close,
 * and now and then a rejected connection) with the real event log, then times `imgcache-server history --database F`
 * as a process of its own, its output going to /dev/null, and reads that process's peak resident memory.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { EventLog } from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { openDatabase } from '../db/open-database.ts';
import { PACKAGE_ROOT } from '../src/config.ts';
import { IMGCACHE_SERVER_BIN } from './server-processes.ts';

const BATCH_EVENTS = 10_000;
/** image requests per session: with the admission and the close, 20 events a session */
const REQUESTS_PER_SESSION = 18;
const PEAK_RSS_PROBE = path.join(PACKAGE_ROOT, 'bench/peak-rss-probe.js');
const EXPORT_DEADLINE_MS = 120_000;

export interface HistoryBuild {
  events: number;
  sessions: number;
  seconds: number;
  fileBytes: number;
}

/** Appends `total` events to a new history `file` with EventLog.recordNow, in batches of 10,000. */
export function buildHistory(file: string, total: number): HistoryBuild {
  const startedAt = performance.now();
  const db = openDatabase(file);
  const log = new EventLog(db);
  const at = Date.UTC(2026, 10, 25);
  let written = 0;
  let session = 0;
  let batch: NewEvent[] = [];
  const add = (event: NewEvent) => {
    if (written + batch.length >= total) return;
    batch.push(event);
    if (batch.length === BATCH_EVENTS) {
      log.recordNow(batch);
      written += batch.length;
      batch = [];
    }
  };
  while (written + batch.length < total) {
    session++;
    const time = at + session * 1000;
    if (session % 100 === 0) {
      add({
        session,
        at: time,
        type: 'connection-rejected',
        data: { reason: 'server-full', occupancy: { open: 3, capacity: 3 }, remote: '127.0.0.1:40000' },
      });
      session++;
    }
    const name = `client-${session}`;
    add({
      session,
      at: time,
      type: 'session-admitted',
      data: {
        name,
        code: 100 + (session % 900),
        tier: 'bronze',
        quota: 20,
        protocolVersion: 1,
        remote: '127.0.0.1:40001',
      },
    });
    for (let request = 1; request <= REQUESTS_PER_SESSION; request++) {
      add({
        session,
        at: time + request,
        type: 'image-served',
        data: {
          requestId: request,
          image: `image-${request % 7}.png`,
          bytes: 4096 * request,
          sha256: 'ab'.repeat(32),
          quotaUsed: request,
          quotaLimit: 20,
        },
      });
    }
    add({ session, at: time + 500, type: 'session-closed', data: { reason: 'client-exit' } });
  }
  if (batch.length > 0) log.recordNow(batch);
  written += batch.length;
  log.close();
  db.close();
  return {
    events: written,
    sessions: session,
    seconds: (performance.now() - startedAt) / 1000,
    fileBytes: statSync(file).size,
  };
}

export interface ExportMeasurement {
  command: string;
  /** wall time from spawning the process to its exit, tsx start-up included */
  seconds: number;
  /** the process's peak resident memory (getrusage maxrss, read at its exit) */
  peakRssBytes: number;
  /** bytes of JSON written, when the output was kept */
  outputBytes: number | null;
}

/**
 * Runs `node src/bin/imgcache-server.js history --database F > out` and measures it. The output goes to /dev/null
 * unless `outputFile` is given (to check the document). A preloaded probe (peak-rss-probe.js) writes the process's
 * own peak RSS at exit: the only way to read it from outside once the process is gone.
 */
export async function measureExport(
  database: string,
  probeFile: string,
  outputFile?: string,
): Promise<ExportMeasurement> {
  const args = ['--import', pathToFileURL(PEAK_RSS_PROBE).href, IMGCACHE_SERVER_BIN, 'history', '--database', database];
  const output = openSync(outputFile ?? '/dev/null', 'w');
  rmSync(probeFile, { force: true });
  const startedAt = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: PACKAGE_ROOT,
    stdio: ['ignore', output, 'pipe'],
    env: { ...process.env, BENCH_PEAK_RSS_FILE: probeFile },
  });
  closeSync(output);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), EXPORT_DEADLINE_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  const seconds = (performance.now() - startedAt) / 1000;
  if (code !== 0) throw new Error(`the export exited with ${code}: ${stderr}`);
  return {
    command: `node src/bin/imgcache-server.js history --database ${path.basename(database)} > ${outputFile ? path.basename(outputFile) : '/dev/null'}`,
    seconds,
    peakRssBytes: Number(readFileSync(probeFile, 'utf8')),
    outputBytes: outputFile ? statSync(outputFile).size : null,
  };
}
