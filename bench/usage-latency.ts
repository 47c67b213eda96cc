/**
 * [P-46] What a long usage does to everyone else: a server process over a large history, one client (a process of
 * its own, bench/usage-reader.ts) reading the whole usage document again and again, and another client sending `list`
 * requests one after the other meanwhile.
 * Reports that client's list latency while the usages stream, beside the same list latency with no usage running.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { PACKAGE_ROOT } from '../src/config.ts';
import { startImgcacheServer } from './server-processes.ts';

const READER = path.join(PACKAGE_ROOT, 'bench/usage-reader.ts');

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface UsageLatency {
  historyEvents: number;
  /** bytes of one usage document */
  documentBytes: number;
  /** usages read in full while the lists were timed */
  usages: number;
  /** seconds a usage took, request to END, the median and the longest */
  usageSecondsMedian: number;
  usageSecondsMax: number;
  /** another client's list, while no usage runs */
  listIdle: LatencySummary;
  /** the same client's list, while usages stream */
  listDuringUsage: LatencySummary;
}

export interface UsageLatencyOptions {
  database: string;
  historyEvents: number;
  cacheDir: string;
  tiersFile: string;
  /** how long the lists are timed in each phase */
  durationMs: number;
}

export async function measureUsageLatency(options: UsageLatencyOptions): Promise<UsageLatency> {
  const server = await startImgcacheServer({
    cacheDir: options.cacheDir,
    database: options.database,
    capacity: 3,
    tiersFile: options.tiersFile,
    logLevel: 'warn',
    // The lists are timed back to back, far above the free-request budget a client gets by default [P-48].
    serverOptions: ['--free-request-burst', '1000000', '--free-requests-per-second', '1000000'],
  });
  try {
    const lister = await ImgcacheClient.connect({ port: server.port });
    try {
      const listIdle = summarize(await timeLists(lister, options.durationMs));
      const reader = await startReader(server.port);
      const during = await timeLists(lister, options.durationMs);
      const { seconds, documentBytes } = await reader.stop();
      seconds.sort((a, b) => a - b);
      return {
        historyEvents: options.historyEvents,
        documentBytes,
        usages: seconds.length,
        usageSecondsMedian: seconds[Math.floor(seconds.length / 2)] ?? 0,
        usageSecondsMax: seconds.at(-1) ?? 0,
        listIdle,
        listDuringUsage: summarize(during),
      };
    } finally {
      lister.close();
    }
  } finally {
    await server.stop();
  }
}

/** Lists one after the other for `durationMs` (at most 100,000 of them); their latencies in ms. */
async function timeLists(client: ImgcacheClient, durationMs: number): Promise<number[]> {
  const latencies: number[] = [];
  const until = performance.now() + durationMs;
  while (performance.now() < until && latencies.length < 100_000) {
    const startedAt = performance.now();
    await client.list();
    latencies.push(performance.now() - startedAt);
  }
  return latencies;
}

/** The usage reader (bench/usage-reader.ts) as a process of its own; resolves once its first usage has started. */
async function startReader(port: number): Promise<{ stop(): Promise<{ seconds: number[]; documentBytes: number }> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', READER, String(port)], {
    cwd: PACKAGE_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const output: string[] = [];
  const started = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      output.push(line);
      if (line === 'reading') resolve();
    });
    child.once('exit', (code) => reject(new Error(`the usage reader exited with ${code} before it started`)));
  });
  await started;
  return {
    stop: async () => {
      const exited = once(child, 'exit');
      child.stdin.end();
      await exited;
      return JSON.parse(output.at(-1) ?? '{}') as { seconds: number[]; documentBytes: number };
    },
  };
}

function summarize(latencies: number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (fraction: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
  return { count: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.at(-1) ?? 0 };
}
