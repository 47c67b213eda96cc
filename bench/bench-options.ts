/**
 * The bench's settings: the full run (`npm run bench`), the smoke run (`--smoke`: one size, two clients, a fraction
 * of a second, no nginx or wrk, small histories; what the test suite runs so the bench cannot rot), and flags that
 * change either.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_ROOT } from '../src/config.ts';

export interface BenchOptions {
  smoke: boolean;
  /** where latest.json and <date>.md go */
  outDir: string;
  /** image sizes, bytes */
  sizes: number[];
  /** concurrent clients */
  concurrency: number[];
  warmupMs: number;
  durationMs: number;
  /** the whole matrix is measured this many times; each server's best round counts */
  rounds: number;
  /** how many times, at most, a kept measurement that other work disturbed is measured again */
  disturbedRepeats: number;
  /** load generator threads (the same for every server) */
  threads: number;
  nginx: boolean;
  /** calibrate the generator against wrk (needs nginx) */
  wrk: boolean;
  calibrationSizes: number[];
  calibrationConnections: number;
  wrkThreads: number;
  wrkSeconds: number;
  /** profile imgcache under the first size at the largest concurrency (perf where it works, node --cpu-prof otherwise) */
  profile: boolean;
  /** measure imgcache once more with its operator log at `info` (one line per event) */
  logCost: boolean;
  /** measure imgcache once more in every row with V8's young generation held small (SMALL_YOUNG_GENERATION) */
  youngGeneration: boolean;
  eventLogCapacityMs: number;
  historyEvents: number;
  admissionSessions: number;
  admissionBatch: number;
  socketAdmissionSessions: number;
  /** the soak (bench/session-soak.ts): measured sessions (0 skips it), warm-up sessions, ms watched after the load */
  soakSessions: number;
  soakWarmUpSessions: number;
  soakSettleMs: number;
  /**
   * the client's own speed (bench/client-speed.ts): the large image `imgcache get` fetches (bytes; 0 skips the
   * section), the small images `refresh` revalidates, how many of them `get` fetches, timed runs of each side
   */
  clientLargeBytes: number;
  clientManyImages: number;
  clientGetImages: number;
  clientRuns: number;
  /** install nginx and wrk with apt-get when missing */
  install: boolean;
  /**
   * compile dist/ first (`npm run build`): the server and the CLI run its JavaScript, which must be the code measured
   */
  build: boolean;
  keepTemp: boolean;
  /** the commit the code was exported from (`git archive`), when the folder is not a git checkout */
  commit: string | null;
}

const KIB = 1024;
const MIB = 1024 * 1024;

export const FULL_RUN: Readonly<Omit<BenchOptions, 'outDir'>> = Object.freeze({
  smoke: false,
  sizes: [4 * KIB, 64 * KIB, 512 * KIB, 4 * MIB],
  concurrency: [3, 64],
  warmupMs: 1_000,
  durationMs: 5_000,
  rounds: 2,
  disturbedRepeats: 2,
  threads: 1,
  nginx: true,
  wrk: true,
  calibrationSizes: [4 * KIB, 64 * KIB],
  calibrationConnections: 64,
  wrkThreads: 2,
  wrkSeconds: 5,
  profile: true,
  logCost: true,
  youngGeneration: true,
  eventLogCapacityMs: 1_500,
  historyEvents: 1_000_000,
  admissionSessions: 10_000,
  admissionBatch: 100,
  socketAdmissionSessions: 10_000,
  soakSessions: 30_000,
  // The heap reaches its steady size after about 10,000 of these sessions (the curve of 2026-11-29: RSS settled into a
  // 128-139 MiB band from there on, and was still rising after 5,000).
  soakWarmUpSessions: 15_000,
  soakSettleMs: 20_000,
  clientLargeBytes: 256 * MIB,
  clientManyImages: 1_000,
  clientGetImages: 50,
  clientRuns: 3,
  install: true,
  build: true,
  keepTemp: false,
  commit: null,
});

export const SMOKE_RUN: Readonly<Omit<BenchOptions, 'outDir'>> = Object.freeze({
  ...FULL_RUN,
  smoke: true,
  sizes: [4 * KIB],
  concurrency: [2],
  warmupMs: 100,
  durationMs: 300,
  rounds: 1,
  // The smoke run checks that every figure is there, not how fast: a busy machine must not double its length.
  disturbedRepeats: 0,
  nginx: false,
  wrk: false,
  profile: false,
  logCost: false,
  youngGeneration: false,
  eventLogCapacityMs: 100,
  historyEvents: 2_000,
  admissionSessions: 200,
  admissionBatch: 50,
  socketAdmissionSessions: 50,
  soakSessions: 200,
  soakWarmUpSessions: 50,
  soakSettleMs: 300,
  clientLargeBytes: 4 * MIB,
  clientManyImages: 20,
  clientGetImages: 5,
  clientRuns: 1,
  install: false,
  // The test suite runs the smoke run beside tests that start the CLI from dist/: never remove it under them.
  build: false,
});

export const USAGE = `npm run bench -- [options]

  --smoke                  a tiny run (4 KiB, C=2, 0.3 s, no nginx/wrk); writes to a temporary folder
  --out-dir DIR            where latest.json and <date>.md go (default bench/results)
  --sizes 4096,65536       image sizes in bytes
  --concurrency 3,64       concurrent clients
  --warmup-ms N            warm-up before each measured window
  --duration-ms N          measured window
  --rounds N               measure the whole matrix N times, keep each server's best round
  --threads N              load generator threads
  --no-nginx               skip nginx (and wrk)
  --no-wrk                 skip the calibration against wrk
  --no-profile             skip the CPU profile of imgcache
  --no-log-cost            skip the run with the operator log at info
  --no-young-generation    skip the runs with V8's young generation held small
  --history-events N       events in the history whose export is timed
  --admission-sessions N   sessions admitted (in-process and over sockets)
  --soak-sessions N        sessions of the memory soak after its warm-up (0: no soak)
  --client-large-bytes N   the image the client's download speed is measured with (0: no client section)
  --client-images N        cached images the client's refresh revalidates
  --no-install             never run apt-get
  --no-build               measure dist/ as it is (default: npm run build first, so dist/ is the code measured)
  --keep-temp              keep the temporary folder (images, histories, profiles)
  --commit HASH            the commit this folder was exported from, when it is not a git checkout`;

function numbers(raw: string | undefined, fallback: readonly number[]): number[] {
  if (raw === undefined) return [...fallback];
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.some((value) => !Number.isSafeInteger(value) || value <= 0)) {
    throw new Error(`expected positive integers separated by commas, not '${raw}'`);
  }
  return values;
}

function integer(raw: string | undefined, fallback: number): number {
  return raw === undefined ? fallback : (numbers(raw, [])[0] as number);
}

export function parseBenchOptions(argv: readonly string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      smoke: { type: 'boolean' },
      'out-dir': { type: 'string' },
      sizes: { type: 'string' },
      concurrency: { type: 'string' },
      'warmup-ms': { type: 'string' },
      'duration-ms': { type: 'string' },
      rounds: { type: 'string' },
      threads: { type: 'string' },
      'no-nginx': { type: 'boolean' },
      'no-wrk': { type: 'boolean' },
      'no-profile': { type: 'boolean' },
      'no-log-cost': { type: 'boolean' },
      'no-young-generation': { type: 'boolean' },
      'history-events': { type: 'string' },
      'admission-sessions': { type: 'string' },
      'soak-sessions': { type: 'string' },
      'client-large-bytes': { type: 'string' },
      'client-images': { type: 'string' },
      'no-install': { type: 'boolean' },
      'no-build': { type: 'boolean' },
      'keep-temp': { type: 'boolean' },
      commit: { type: 'string' },
    },
  });
  if (values.help) return 'help';
  const base = values.smoke ? SMOKE_RUN : FULL_RUN;
  const nginx = base.nginx && !values['no-nginx'];
  const admissionSessions = integer(values['admission-sessions'], base.admissionSessions);
  return {
    ...base,
    outDir:
      values['out-dir'] ??
      (values.smoke
        ? mkdtempSync(path.join(tmpdir(), 'imgcache-bench-smoke-'))
        : path.join(PACKAGE_ROOT, 'bench/results')),
    sizes: numbers(values.sizes, base.sizes),
    concurrency: numbers(values.concurrency, base.concurrency),
    warmupMs: integer(values['warmup-ms'], base.warmupMs),
    durationMs: integer(values['duration-ms'], base.durationMs),
    rounds: integer(values.rounds, base.rounds),
    threads: integer(values.threads, base.threads),
    nginx,
    wrk: nginx && base.wrk && !values['no-wrk'],
    profile: base.profile && !values['no-profile'],
    logCost: base.logCost && !values['no-log-cost'],
    youngGeneration: base.youngGeneration && !values['no-young-generation'],
    historyEvents: integer(values['history-events'], base.historyEvents),
    admissionSessions,
    socketAdmissionSessions: values['admission-sessions'] ? admissionSessions : base.socketAdmissionSessions,
    admissionBatch: Math.min(base.admissionBatch, admissionSessions),
    soakSessions: values['soak-sessions'] === '0' ? 0 : integer(values['soak-sessions'], base.soakSessions),
    clientLargeBytes:
      values['client-large-bytes'] === '0' ? 0 : integer(values['client-large-bytes'], base.clientLargeBytes),
    clientManyImages: integer(values['client-images'], base.clientManyImages),
    clientGetImages: Math.min(base.clientGetImages, integer(values['client-images'], base.clientManyImages)),
    install: base.install && !values['no-install'],
    build: base.build && !values['no-build'],
    keepTemp: values['keep-temp'] === true,
    commit: values.commit ?? null,
  };
}
