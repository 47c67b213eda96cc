/**
 * `npm run bench`: imgcache beside nginx, a bare Node server (with and without the history) and the common way
 * (Fastify), on this machine, in one run; then the event log, the usage export of a large history, admission at
 * scale, the memory soak, start-up, the client's own speed and a CPU profile of imgcache under load. Writes
 * `<out-dir>/latest.json` and `<out-dir>/<date>.md`, prints the markdown, logs progress on stderr.
 * `npm run bench -- --help` lists the options; bench/README.md says what each number means.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../src/config.ts';
import type { InProcessAdmission } from './admission-in-process.ts';
import { measureAdmissionOverSockets } from './admission-over-sockets.ts';
import { type BenchImage, writeBenchImages, writeBenchTiers } from './bench-fixtures.ts';
import { type BenchOptions, parseBenchOptions, USAGE } from './bench-options.ts';
import {
  admissionFigures,
  type BenchResults,
  checkTargets,
  SMALL_YOUNG_GENERATION,
  type SmallYoungGenerationRun,
} from './bench-results.ts';
import { measureClientSpeed } from './client-speed.ts';
import { measureCluster } from './cluster-bench.ts';
import { type CpuProfile, summarizeProfile } from './cpu-profile.ts';
import { type EventLogCapacity, measureEventLogCapacity } from './event-log-capacity.ts';
import { type FloodRun, measureFreeRequestFlood } from './free-request-flood.ts';
import { buildHistory, measureExport } from './history-export.ts';
import { codeVersion, machineInfo } from './machine-info.ts';
import { type LoadSettings, measureRun } from './measure-run.ts';
import { NGINX_SETUPS, type NginxProcess, startNginx } from './nginx.ts';
import {
  PERF_FREQUENCY,
  perfNodeOptions,
  perfUnavailable,
  recordPerf,
  removePerfMap,
  reportPerf,
} from './perf-profile.ts';
import { renderMarkdown } from './report.ts';
import { runSessionSoak, type SoakResult } from './session-soak.ts';
import { measureStartup } from './startup-time.ts';
import { ensureCommands } from './system-packages.ts';
import { historySync, imgcacheTarget, type MatrixContext, measureImgcache, runThroughputMatrix } from './throughput.ts';
import { measureUsageLatency, type UsageLatency } from './usage-latency.ts';

const execFileAsync = promisify(execFile);
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseBenchOptions(argv);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }
  const results = await runBench(options);
  mkdirSync(options.outDir, { recursive: true });
  const markdown = renderMarkdown(results);
  writeFileSync(path.join(options.outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(options.outDir, `${results.date}.md`), markdown);
  process.stdout.write(markdown);
  log(`wrote ${path.join(options.outDir, 'latest.json')} and ${results.date}.md`);
  return 0;
}

async function runBench(options: BenchOptions): Promise<BenchResults> {
  const startedAt = performance.now();
  if (options.build) {
    log('compiling dist/ (npm run build): the server and the CLI run it');
    execFileSync('npm', ['run', 'build'], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (options.install) {
    ensureCommands(
      [
        ...(options.nginx ? ['nginx', 'curl', ...(options.wrk ? ['wrk'] : [])] : []),
        // The CPU profile is perf's where perf works; without it the page falls back to V8's profiler.
        ...(options.profile ? [{ command: 'perf', package: 'linux-perf' }] : []),
      ],
      log,
    );
  }
  const machine = machineInfo();
  const code = codeVersion(options.commit);
  const workDir = mkdtempSync(path.join(tmpdir(), 'imgcache-bench-'));
  // nginx's workers run as an unprivileged user: they must be able to reach the images.
  chmodSync(workDir, 0o755);
  const imageDir = path.join(workDir, 'images');
  const images = writeBenchImages(imageDir, options.sizes);
  const tiersFile = path.join(workDir, 'tiers.json');
  writeBenchTiers(tiersFile);
  const settings: LoadSettings = {
    warmupMs: options.warmupMs,
    durationMs: options.durationMs,
    threads: options.threads,
  };
  const nginx: NginxProcess[] = [];
  try {
    if (options.nginx) {
      for (const [index, setup] of NGINX_SETUPS.entries()) {
        nginx.push(await startNginx(setup, path.join(workDir, `nginx-${index}`), imageDir));
      }
    }
    const context: MatrixContext = {
      workDir,
      imageDir,
      tiersFile,
      settings,
      nginx,
      calibrate: (bytes, connections) =>
        options.wrk && options.calibrationSizes.includes(bytes) && connections === options.calibrationConnections,
      wrk: { threads: options.wrkThreads, seconds: options.wrkSeconds },
      log,
    };
    const { rows, calibration } = await runThroughputMatrix(
      context,
      images,
      options.concurrency,
      options.rounds,
      options.disturbedRepeats,
    );
    const busiest = Math.max(...options.concurrency);
    const first = images[0] as BenchImage;
    const profile = options.profile ? await profileImgcache(context, first, busiest) : null;
    const logCost = options.logCost ? await measureWithInfoLog(context, first, busiest) : null;
    const smallYoungGeneration = options.youngGeneration
      ? await measureSmallYoungGeneration(context, images, options.concurrency)
      : null;
    const eventLogCapacity = await measureLogCapacity(workDir, options);
    const history = await measureHistoryExport(workDir, options);
    const usageLatency = await measureUsageWhileListing(workDir, imageDir, tiersFile, options);
    const freeRequestFlood = await measureFlood(workDir, imageDir, tiersFile, options);
    const admission = await measureAdmission(context, first, options);
    const soak = options.soakSessions > 0 ? await measureSoak(context, first, options) : null;
    const clientSpeed =
      options.clientLargeBytes > 0
        ? await measureClientSpeed({
            workDir,
            tiersFile,
            largeBytes: options.clientLargeBytes,
            manyImages: options.clientManyImages,
            manyBytes: 4 * 1024,
            getImages: options.clientGetImages,
            runs: options.clientRuns,
            nginx: options.nginx,
            log,
          })
        : null;
    const startup = await measureStartup({
      workDir,
      imageDir,
      runs: options.smoke ? 1 : 20,
      install: options.install,
      log,
    });
    // One node and three on one PostgreSQL (a section of its own: it needs PostgreSQL and HAProxy, and time)
    const cluster = options.smoke
      ? { skipped: 'not in a smoke run' }
      : await measureCluster({
          workDir,
          imageDir,
          tiersFile,
          settings,
          image: images.find((image) => image.bytes === 4096) ?? first,
          connections: 64,
          commitMs: options.eventLogCapacityMs,
          log,
        });
    const partial = {
      date: new Date().toISOString().slice(0, 10),
      mode: options.smoke ? ('smoke' as const) : ('full' as const),
      machine,
      code,
      settings: withoutOutDir(options),
      historySync: historySync(),
      rows,
      calibration,
      profile,
      logCost,
      smallYoungGeneration,
      eventLogCapacity,
      history,
      usageLatency,
      freeRequestFlood,
      admission,
      soak,
      startup,
      clientSpeed,
      cluster,
      seconds: (performance.now() - startedAt) / 1000,
    };
    return { ...partial, targets: checkTargets(partial) };
  } finally {
    for (const server of nginx) await server.stop();
    if (options.keepTemp) log(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

function withoutOutDir(options: BenchOptions): Omit<BenchOptions, 'outDir'> {
  const { outDir: _outDir, ...settings } = options;
  return settings;
}

/**
 * imgcache once more, profiled: with perf when it works here (CPU time of all the server's threads), else under
 * `node --cpu-prof` (wall time of the main thread); the samples of the measured window, summarized.
 */
async function profileImgcache(context: MatrixContext, image: BenchImage, connections: number) {
  const perfUnusable = await perfUnavailable();
  if (perfUnusable === null) {
    try {
      return await profileWithPerf(context, image, connections);
    } catch (error) {
      context.log(`perf profile failed, profiling with node --cpu-prof instead: ${(error as Error).message}`);
      return profileWithV8(context, image, connections, `perf failed: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  context.log(`${perfUnusable}; profiling with node --cpu-prof`);
  return profileWithV8(context, image, connections, perfUnusable);
}

/**
 * perf starts recording before the load (attaching takes some 0.4 s) and stops after it; the report keeps only the
 * samples of the measured window, on the clock the bench times it with.
 */
async function profileWithPerf(context: MatrixContext, image: BenchImage, connections: number) {
  const perfDir = path.join(context.workDir, 'perf-profile');
  mkdirSync(perfDir, { recursive: true });
  const file = path.join(perfDir, 'perf.data');
  const { target, server, close } = await imgcacheTarget(context, image, connections, {
    nodeOptions: perfNodeOptions(perfDir),
  });
  let run: Awaited<ReturnType<typeof measureRun>>;
  try {
    const recording = recordPerf(server.pid, file);
    try {
      run = await measureRun(target, image, connections, context.settings);
    } finally {
      await recording.stop();
    }
    const command = `perf record -e cpu-clock -F ${PERF_FREQUENCY} -p PID`;
    const summary = await reportPerf(file, server.pid, run.windowMicros, command);
    if (summary.samples === 0) throw new Error('perf recorded no samples in the measured window');
    context.log(`profiled with perf: ${Math.round(run.requestsPerSecond)} req/s, ${summary.samples} samples`);
    return { run, summary };
  } finally {
    await close();
    removePerfMap(server.pid);
  }
}

/** `whyNotPerf`: the page says why this profile is V8's */
async function profileWithV8(context: MatrixContext, image: BenchImage, connections: number, whyNotPerf: string) {
  const profileDir = path.join(context.workDir, 'cpu-profile');
  const { target, close } = await imgcacheTarget(context, image, connections, {
    nodeOptions: ['--cpu-prof', '--cpu-prof-dir', profileDir],
  });
  let run: Awaited<ReturnType<typeof measureRun>>;
  try {
    run = await measureRun(target, image, connections, context.settings);
  } finally {
    await close();
  }
  // CPU.<date>.<time>.<pid>.<thread>.<sequence>.cpuprofile: thread 0 is the main thread (1 is tsx's loader).
  const files = readdirSync(profileDir).filter((file) => file.endsWith('.cpuprofile'));
  const main = files.find((file) => file.split('.')[4] === '0') ?? files[0];
  if (main === undefined) throw new Error('node --cpu-prof wrote no profile');
  const profile = JSON.parse(readFileSync(path.join(profileDir, main), 'utf8')) as CpuProfile;
  context.log(`profiled: ${Math.round(run.requestsPerSecond)} req/s under the profiler`);
  if (run.windowMicros[0] < profile.startTime || run.windowMicros[1] > profile.endTime) {
    throw new Error('the measured window lies outside the CPU profile: the clocks differ');
  }
  return { run, summary: { ...summarizeProfile(profile, 20, run.windowMicros), perfUnavailable: whyNotPerf } };
}

async function measureWithInfoLog(context: MatrixContext, image: BenchImage, connections: number) {
  const run = await measureImgcache(context, image, connections, {
    logLevel: 'info',
    logFile: path.join(context.workDir, 'imgcache-info.log'),
  });
  context.log(`log at info: ${Math.round(run.requestsPerSecond)} req/s`);
  return run;
}

/**
 * imgcache started with V8's young generation held small (an operator's choice, through NODE_OPTIONS), once in
 * every row: what it saves in peak memory and what it costs in speed.
 */
async function measureSmallYoungGeneration(
  context: MatrixContext,
  images: readonly BenchImage[],
  concurrencies: readonly number[],
): Promise<SmallYoungGenerationRun[]> {
  const runs: SmallYoungGenerationRun[] = [];
  for (const image of images) {
    for (const connections of concurrencies) {
      const run = await measureImgcache(context, image, connections, { nodeOptions: [SMALL_YOUNG_GENERATION] });
      context.log(
        `${SMALL_YOUNG_GENERATION}, ${image.label}, C=${connections}: imgcache ${Math.round(run.requestsPerSecond)} req/s`,
      );
      runs.push({ imageBytes: image.bytes, connections, run });
    }
  }
  return runs;
}

async function measureLogCapacity(workDir: string, options: BenchOptions): Promise<EventLogCapacity[]> {
  const capacity: EventLogCapacity[] = [];
  for (const callers of [1, 3, 64]) {
    const file = path.join(workDir, `event-log-${callers}.sqlite`);
    capacity.push(await measureEventLogCapacity(file, callers, options.eventLogCapacityMs));
    log(`event log, ${callers} records per turn: ${Math.round(capacity.at(-1)?.eventsPerSecond ?? 0)} events/s`);
  }
  return capacity;
}

async function measureHistoryExport(workDir: string, options: BenchOptions): Promise<BenchResults['history']> {
  const database = path.join(workDir, 'large-history.sqlite');
  const build = buildHistory(database, options.historyEvents);
  log(`history of ${build.events} events built in ${build.seconds.toFixed(1)} s`);
  const probe = path.join(workDir, 'export-peak-rss');
  const measured = await measureExport(database, probe);
  log(`export: ${measured.seconds.toFixed(2)} s, peak RSS ${(measured.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
  // Once more into a file, to check that the document is whole (not timed; skipped for big histories).
  let documentChecked = false;
  if (build.events <= 100_000) {
    const output = path.join(workDir, 'usage.json');
    await measureExport(database, probe, output);
    const document = JSON.parse(readFileSync(output, 'utf8')) as { clients: unknown[]; rejected: unknown[] };
    documentChecked = document.clients.length > 0 && statSync(output).size > 0;
  }
  return { build, export: measured, documentChecked };
}

/** [P-46] Another client's list latency while usages of a 300,000-event history stream (the figure). */
async function measureUsageWhileListing(
  workDir: string,
  cacheDir: string,
  tiersFile: string,
  options: BenchOptions,
): Promise<UsageLatency> {
  const database = path.join(workDir, 'usage-latency.sqlite');
  const events = Math.min(options.historyEvents, 300_000);
  buildHistory(database, events);
  const measured = await measureUsageLatency({
    database,
    historyEvents: events,
    cacheDir,
    tiersFile,
    durationMs: options.durationMs * 2,
  });
  log(
    `list while usages stream: p99 ${measured.listDuringUsage.p99Ms.toFixed(2)} ms ` +
      `(idle ${measured.listIdle.p99Ms.toFixed(2)} ms), ${measured.usages} usages`,
  );
  return measured;
}

/** [P-48] [P-49] History growth under floods of requests that cost no quota. */
async function measureFlood(
  workDir: string,
  cacheDir: string,
  tiersFile: string,
  options: BenchOptions,
): Promise<FloodRun[]> {
  const runs = await measureFreeRequestFlood({
    cacheDir,
    database: path.join(workDir, 'flood.sqlite'),
    tiersFile,
    durationMs: options.durationMs * 2,
  });
  for (const run of runs) {
    log(`flood of ${run.kind}: ${(run.bytesPerHour / 2 ** 20).toFixed(1)} MiB of history an hour`);
  }
  return runs;
}

async function measureAdmission(
  context: MatrixContext,
  image: BenchImage,
  options: BenchOptions,
): Promise<BenchResults['admission']> {
  const script = path.join(path.dirname(new URL(import.meta.url).pathname), 'admission-in-process.ts');
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', script, String(options.admissionSessions), String(options.admissionBatch)],
    { cwd: path.dirname(path.dirname(script)), maxBuffer: 64 * 1024 * 1024, timeout: 300_000 },
  );
  const inProcess = JSON.parse(stdout) as InProcessAdmission;
  log(`admission in-process: ${inProcess.sessions} sessions in ${inProcess.totalSeconds.toFixed(2)} s`);
  const sessions = options.socketAdmissionSessions;
  const warmUp = Math.min(1_000, sessions);
  const { server, close } = await imgcacheTarget(context, image, sessions + warmUp);
  let overSockets: Awaited<ReturnType<typeof measureAdmissionOverSockets>>;
  try {
    overSockets = await measureAdmissionOverSockets(server, sessions, options.admissionBatch, warmUp);
  } finally {
    await close();
  }
  log(`admission over sockets: ${sessions} sessions in ${overSockets.totalSeconds.toFixed(2)} s`);
  return {
    inProcess: {
      ...inProcess,
      figures: admissionFigures(inProcess.batches, inProcess.sessions, inProcess.totalSeconds),
    },
    overSockets: {
      ...overSockets,
      figures: admissionFigures(overSockets.batches, overSockets.sessions, overSockets.totalSeconds),
    },
  };
}

/** The server's memory over many short sessions (bench/session-soak.ts), on a fresh imgcache and history. */
async function measureSoak(context: MatrixContext, image: BenchImage, options: BenchOptions): Promise<SoakResult> {
  const concurrency = 4;
  const { server, close } = await imgcacheTarget(context, image, 2 * concurrency);
  let soak: SoakResult;
  try {
    soak = await runSessionSoak({
      port: server.port,
      pid: server.pid,
      image: image.name,
      warmUpSessions: options.soakWarmUpSessions,
      sessions: options.soakSessions,
      concurrency,
      samples: 12,
      settleMs: options.soakSettleMs,
      settleSampleMs: Math.max(100, Math.floor(options.soakSettleMs / 8)),
      deadlineMs: 600_000,
    });
  } finally {
    await close();
  }
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  log(
    `soak: ${soak.sessions} sessions at ${Math.round(soak.sessionsPerSecond)}/s, RSS ${mib(soak.rssAfterWarmUpBytes)} ` +
      `(warm-up's highest ${mib(soak.rssWarmUpPeakBytes)}) -> ` +
      `${mib(soak.rssAfterSessionsBytes)} MiB, ${mib(soak.rssAfterLoadBytes)} MiB ${soak.settleMs / 1000} s after the load`,
  );
  return soak;
}

const status = await main(process.argv.slice(2));
process.exitCode = status;
