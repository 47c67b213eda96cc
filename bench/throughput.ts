/**
 * The throughput matrix: for every image size and concurrency, imgcache, the bare baseline, the baseline + history,
 * the common way and each nginx setup under the same load, back to back. imgcache, the baselines and the common way
 * are started fresh for each measurement (so their peak memory is that measurement's), imgcache with `--capacity` =
 * the concurrency, each server that records events with a fresh history, synced as `IMGCACHE_HISTORY_SYNC` says.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase } from '../db/open-database.ts';
import { lastPosition } from '../db/usage-export.ts';
import { resolveConfig } from '../src/config.ts';
import type { BenchImage } from './bench-fixtures.ts';
import { type LoadSettings, measureRun, type RunTarget, type ServerRun } from './measure-run.ts';
import type { NginxProcess } from './nginx.ts';
import { cpuTimeMs, peakRssBytes } from './proc-stats.ts';
import {
  type ImgcacheServerOptions,
  type ServerProcess,
  startBareServer,
  startCommonWayServer,
  startImgcacheServer,
} from './server-processes.ts';
import { runWrk, type WrkResult } from './wrk.ts';

export interface ThroughputRow {
  imageBytes: number;
  label: string;
  connections: number;
  imgcache: ServerRun;
  baseline: ServerRun;
  /** the baseline committing each answer's event first: the ceiling the history alone leaves imgcache */
  baselineWithHistory: ServerRun;
  /**
   * the baseline + history taking each answer's steps of imgcache's session machine too: the ceiling that the two
   * pieces of work the design fixes per answer leave imgcache
   */
  designFloor: ServerRun;
  /** Fastify + a plain better-sqlite3 INSERT + @fastify/static, over HTTP keep-alive (bench/common-way-server.ts) */
  commonWay: ServerRun;
  nginx: ServerRun[];
  /** the faster nginx setup of this row, or null without nginx */
  bestNginx: ServerRun | null;
  /** imgcache req/s over best nginx req/s (target >= 1.0) */
  versusNginx: number | null;
  /** imgcache req/s over baseline req/s */
  versusBaseline: number;
  /** imgcache req/s over (baseline + history) req/s (target >= 0.8 up to 64 KiB, >= 0.9 above) */
  versusBaselineWithHistory: number;
  /** baseline + history req/s over baseline req/s: the highest versusBaseline that committing each event allows */
  historyCeiling: number;
  /** imgcache req/s over (baseline + history + session machine) req/s: how close imgcache is to the design's floor */
  versusDesignFloor: number;
  /** (baseline + history + session machine) req/s over (baseline + history) req/s: what the machine's steps leave */
  machineCeiling: number;
  /** imgcache req/s over the common way's req/s */
  versusCommonWay: number;
  /** imgcache's peak RSS over the baseline's (target <= 1.3) */
  rssVersusBaseline: number;
}

export interface Calibration {
  nginx: string;
  imageBytes: number;
  connections: number;
  oursRequestsPerSecond: number;
  wrk: WrkResult;
  /** ours / wrk (must be >= 0.9) */
  ratio: number;
}

export interface MatrixContext {
  workDir: string;
  imageDir: string;
  tiersFile: string;
  settings: LoadSettings;
  nginx: readonly NginxProcess[];
  /** (size, concurrency) pairs at which our generator is checked against wrk, right after our nginx run */
  calibrate: (imageBytes: number, connections: number) => boolean;
  wrk: { threads: number; seconds: number };
  log: (line: string) => void;
}

let serverCount = 0;

/** A history file of its own for the next server measured. */
function freshHistoryFile(workDir: string): string {
  return path.join(workDir, `history-${++serverCount}.sqlite`);
}

/** Counts the events in a history while its server writes it (a read-only connection of its own). */
function eventCounter(database: string): { eventCount: () => number; close: () => void } {
  const reader = openDatabase(database, { readonly: true });
  return { eventCount: () => lastPosition(reader), close: () => reader.close() };
}

/** A fresh imgcache process and the RunTarget that measures it; `close()` stops it. */
export async function imgcacheTarget(
  context: Pick<MatrixContext, 'workDir' | 'imageDir' | 'tiersFile'>,
  image: BenchImage,
  capacity: number,
  extra: Partial<ImgcacheServerOptions> = {},
): Promise<{ target: RunTarget; server: ServerProcess; close: () => Promise<void> }> {
  const database = freshHistoryFile(context.workDir);
  const server = await startImgcacheServer({
    cacheDir: context.imageDir,
    database,
    capacity,
    tiersFile: context.tiersFile,
    logLevel: 'warn',
    ...extra,
  });
  let events: ReturnType<typeof eventCounter>;
  try {
    events = eventCounter(database);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    server,
    target: {
      server: 'imgcache',
      port: server.port,
      protocol: 'imgcache',
      target: image.name,
      cpuTimeMs: () => cpuTimeMs(server.pid),
      peakRssBytes: () => peakRssBytes(server.pid),
      eventCount: events.eventCount,
    },
    close: async () => {
      events.close();
      await server.stop();
      if (server.stderr().trim() !== '') throw new Error(`imgcache wrote on stderr: ${server.stderr()}`);
    },
  };
}

/** One measurement of a fresh imgcache, started with `extra` (e.g. its log at info, node options). */
export async function measureImgcache(
  context: MatrixContext,
  image: BenchImage,
  connections: number,
  extra: Partial<ImgcacheServerOptions> = {},
): Promise<ServerRun> {
  const { target, close } = await imgcacheTarget(context, image, connections, extra);
  try {
    return await measureRun(target, image, connections, context.settings);
  } finally {
    await close();
  }
}

const BASELINE = 'baseline';
export const BASELINE_WITH_HISTORY = 'baseline + history';
export const DESIGN_FLOOR = 'baseline + history + session machine';
export const COMMON_WAY = 'common way (Fastify)';

/**
 * The bare baseline; with `work` 'history', the baseline that commits an event to a fresh history before each answer;
 * with 'history + machine', the one that also takes each answer's steps of the session machine.
 */
async function measureBaseline(
  context: MatrixContext,
  image: BenchImage,
  connections: number,
  work: 'none' | 'history' | 'history + machine',
): Promise<ServerRun> {
  const database = work === 'none' ? undefined : freshHistoryFile(context.workDir);
  const server = await startBareServer(context.imageDir, database, work === 'history + machine');
  const events = database === undefined ? null : eventCounter(database);
  const name = { none: BASELINE, history: BASELINE_WITH_HISTORY, 'history + machine': DESIGN_FLOOR }[work];
  try {
    return await measureRun(
      {
        server: name,
        port: server.port,
        protocol: 'bare',
        target: image.name,
        cpuTimeMs: () => cpuTimeMs(server.pid),
        peakRssBytes: () => peakRssBytes(server.pid),
        ...(events ? { eventCount: events.eventCount } : {}),
      },
      image,
      connections,
      context.settings,
    );
  } finally {
    events?.close();
    await server.stop();
  }
}

/** The sync setting of this run, as imgcache and the baseline + history read it. */
export const historySync = (): 'full' | 'normal' => resolveConfig({}, process.env).historySync;

/** The common way, started fresh with a history file of its own. */
async function measureCommonWay(context: MatrixContext, image: BenchImage, connections: number): Promise<ServerRun> {
  const database = freshHistoryFile(context.workDir);
  const server = await startCommonWayServer(context.imageDir, database, historySync());
  const reader = new Database(database, { readonly: true });
  const count = reader.prepare<[], { events: number | null }>('SELECT max(id) AS events FROM events');
  try {
    return await measureRun(
      {
        server: COMMON_WAY,
        port: server.port,
        protocol: 'http',
        target: `/${image.name}`,
        cpuTimeMs: () => cpuTimeMs(server.pid),
        peakRssBytes: () => peakRssBytes(server.pid),
        eventCount: () => count.get()?.events ?? 0,
      },
      image,
      connections,
      context.settings,
    );
  } finally {
    reader.close();
    await server.stop();
  }
}

function measureNginx(context: MatrixContext, nginx: NginxProcess, image: BenchImage, connections: number) {
  return measureRun(
    {
      server: `nginx: ${nginx.setup.name}`,
      port: nginx.port,
      protocol: 'http',
      target: `/${image.name}`,
      cpuTimeMs: () => nginx.cpuTimeMs(),
      peakRssBytes: () => nginx.peakRssBytes(),
    },
    image,
    connections,
    context.settings,
  );
}

/** A kept measurement during which the rest of the machine used more CPU than this (cores) is measured again. */
const DISTURBED_CORES = 0.25;

/**
 * Measures every server at every (size, concurrency), the whole matrix `rounds` times over (so a burst of other work
 * on the machine hits one measurement of a server, not all of them), and keeps each server's best round: noise only
 * ever slows a run down. A best round that was still disturbed (other work used over 0.25 cores) is measured again,
 * at most `repeats` times. Every measurement's requests/s stays in `rounds` of the kept run.
 */
export async function runThroughputMatrix(
  context: MatrixContext,
  images: readonly BenchImage[],
  concurrencies: readonly number[],
  rounds: number,
  repeats: number,
): Promise<{ rows: ThroughputRow[]; calibration: Calibration[] }> {
  const runs = new Map<string, ServerRun[]>();
  const wrkRuns = new Map<string, WrkResult[]>();
  const remeasure = new Map<string, () => Promise<ServerRun>>();
  const keep = <T>(map: Map<string, T[]>, key: string, value: T) => map.set(key, [...(map.get(key) ?? []), value]);
  const measure = async (key: string, where: string, once: () => Promise<ServerRun>) => {
    remeasure.set(key, once);
    const run = await once();
    keep(runs, key, run);
    context.log(`${where}: ${run.server} ${describe(run)}`);
    return run;
  };
  for (let round = 1; round <= rounds; round++) {
    for (const image of images) {
      for (const connections of concurrencies) {
        const where = `round ${round}/${rounds}, ${image.label}, C=${connections}`;
        const key = (server: string) => `${image.bytes}/${connections}/${server}`;
        await measure(key('imgcache'), where, () => measureImgcache(context, image, connections));
        await measure(key(BASELINE), where, () => measureBaseline(context, image, connections, 'none'));
        await measure(key(BASELINE_WITH_HISTORY), where, () => measureBaseline(context, image, connections, 'history'));
        await measure(key(DESIGN_FLOOR), where, () =>
          measureBaseline(context, image, connections, 'history + machine'),
        );
        await measure(key(COMMON_WAY), where, () => measureCommonWay(context, image, connections));
        for (const server of context.nginx) {
          const serverKey = key(`nginx: ${server.setup.name}`);
          await measure(serverKey, where, () => measureNginx(context, server, image, connections));
          if (context.calibrate(image.bytes, connections)) {
            const url = `http://127.0.0.1:${server.port}/${image.name}`;
            const wrk = await runWrk(url, connections, context.wrk.threads, context.wrk.seconds);
            keep(wrkRuns, serverKey, wrk);
            context.log(`${where}: wrk ${Math.round(wrk.requestsPerSecond)} req/s`);
          }
        }
      }
    }
  }
  const fastest = (key: string): ServerRun =>
    (runs.get(key) ?? []).reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
  for (const [key, once] of remeasure) {
    for (let repeat = 1; repeat <= repeats && fastest(key).otherCpuCores > DISTURBED_CORES; repeat++) {
      await measure(key, `repeat ${repeat} (disturbed), ${key}`, once);
    }
  }
  const best = (key: string): ServerRun => ({
    ...fastest(key),
    rounds: (runs.get(key) ?? []).map((run) => run.requestsPerSecond),
  });
  const rows: ThroughputRow[] = [];
  const calibration: Calibration[] = [];
  for (const image of images) {
    for (const connections of concurrencies) {
      const key = (server: string) => `${image.bytes}/${connections}/${server}`;
      const imgcache = best(key('imgcache'));
      const baseline = best(key(BASELINE));
      const baselineWithHistory = best(key(BASELINE_WITH_HISTORY));
      const designFloor = best(key(DESIGN_FLOOR));
      const commonWay = best(key(COMMON_WAY));
      const nginx = context.nginx.map((server) => best(key(`nginx: ${server.setup.name}`)));
      const bestNginx = nginx.reduce<ServerRun | null>(
        (quickest, run) => (quickest === null || run.requestsPerSecond > quickest.requestsPerSecond ? run : quickest),
        null,
      );
      rows.push({
        imageBytes: image.bytes,
        label: image.label,
        connections,
        imgcache,
        baseline,
        baselineWithHistory,
        designFloor,
        commonWay,
        nginx,
        bestNginx,
        versusNginx: bestNginx ? imgcache.requestsPerSecond / bestNginx.requestsPerSecond : null,
        versusBaseline: imgcache.requestsPerSecond / baseline.requestsPerSecond,
        versusBaselineWithHistory: imgcache.requestsPerSecond / baselineWithHistory.requestsPerSecond,
        historyCeiling: baselineWithHistory.requestsPerSecond / baseline.requestsPerSecond,
        versusDesignFloor: imgcache.requestsPerSecond / designFloor.requestsPerSecond,
        machineCeiling: designFloor.requestsPerSecond / baselineWithHistory.requestsPerSecond,
        versusCommonWay: imgcache.requestsPerSecond / commonWay.requestsPerSecond,
        rssVersusBaseline: imgcache.serverPeakRssBytes / baseline.serverPeakRssBytes,
      });
      for (const run of nginx) {
        const wrk = wrkRuns.get(key(run.server));
        if (!wrk) continue;
        const bestWrk = wrk.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
        calibration.push({
          nginx: run.server.replace('nginx: ', ''),
          imageBytes: image.bytes,
          connections,
          oursRequestsPerSecond: run.requestsPerSecond,
          wrk: { ...bestWrk, rounds: wrk.map((entry) => entry.requestsPerSecond) },
          ratio: run.requestsPerSecond / bestWrk.requestsPerSecond,
        });
      }
    }
  }
  return { rows, calibration };
}

function describe(run: ServerRun): string {
  const errors = run.errors > 0 ? `, ${run.errors} errors (${run.firstErrors.join('; ')})` : '';
  return (
    `${Math.round(run.requestsPerSecond)} req/s, p50 ${run.p50Ms.toFixed(2)} ms, p99 ${run.p99Ms.toFixed(2)} ms, ` +
    `${run.serverCpuMicrosPerRequest.toFixed(1)} µs CPU/req, other CPU ${run.otherCpuCores.toFixed(2)}${errors}`
  );
}
