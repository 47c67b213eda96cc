/**
 * A CPU profile of a server process made with Linux `perf`: samples on the cpu-clock event of every thread of the
 * process, so a thread waiting for a core is not sampled (unlike V8's sampler, which samples the main thread's wall
 * time). The parser of `perf report`'s text and the summary are pure; the functions that run perf are at the end.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';

export interface PerfEntry {
  /** e.g. "node", "[kernel.kallsyms]", "libc.so.6", "better_sqlite3.node", "[JIT] tid 1234" */
  dso: string;
  symbol: string;
  samples: number;
}

export interface PerfReport {
  entries: PerfEntry[];
  /** perf's event count: nanoseconds of CPU for cpu-clock */
  eventCount: number;
}

export interface PerfSymbol {
  name: string;
  dso: string;
  area: string;
  samples: number;
  /** share of all the samples */
  share: number;
}

export interface PerfProfileSummary {
  profiler: 'perf';
  /** the perf command that recorded the profile, as the page shows it */
  command: string;
  samples: number;
  /** CPU time sampled over the window, all threads, ms */
  cpuMs: number;
  /** share of the samples taken on the main thread (the rest: V8's GC helpers, libuv's pool, the history's thread) */
  mainThreadShare: number;
  /** how long after the window opened perf's first sample came (0 when perf was recording before it opened), ms */
  lateStartMs: number;
  top: PerfSymbol[];
  areas: Array<{ area: string; samples: number; share: number }>;
}

// `    12.34%           123  node                 [.] v8::internal::Scavenger::ScavengeObject`
const ENTRY_LINE = /^\s*[\d.]+%\s+(\d+)\s+(.+?)\s+\[([^\]])\]\s(.*)$/;
const EVENT_COUNT_LINE = /^#\s*Event count \(approx\.\):\s*(\d+)/;

/** `perf report --stdio --no-children -n --sort dso,sym` */
export function parsePerfReport(text: string): PerfReport {
  const entries: PerfEntry[] = [];
  let eventCount = 0;
  for (const line of text.split('\n')) {
    const count = EVENT_COUNT_LINE.exec(line);
    if (count) {
      eventCount += Number(count[1]);
      continue;
    }
    if (line.startsWith('#')) continue;
    const entry = ENTRY_LINE.exec(line);
    if (!entry) continue;
    const symbol = (entry[4] as string).trim();
    entries.push({ dso: entry[2] as string, symbol, samples: Number(entry[1]) });
  }
  return { entries, eventCount };
}

// `    87.50%          1225  21041:node`
const THREAD_LINE = /^\s*[\d.]+%\s+(\d+)\s+(\d+):/;

/** `perf report --stdio --no-children -n --sort pid`: samples by thread id. */
export function parseSamplesByThread(text: string): Map<number, number> {
  const threads = new Map<number, number>();
  for (const line of text.split('\n')) {
    const thread = THREAD_LINE.exec(line);
    if (!thread) continue;
    const tid = Number(thread[2]);
    threads.set(tid, (threads.get(tid) ?? 0) + Number(thread[1]));
  }
  return threads;
}

/** `# time of first sample : 26232.656813` in `perf report --header-only`, seconds on the recording's clock */
export function parseFirstSampleSeconds(header: string): number | null {
  const first = /^#\s*time of first sample\s*:\s*([\d.]+)/m.exec(header);
  return first ? Number(first[1]) : null;
}

const GC_CLASS =
  /^(?:\w*Scaveng\w*|\w*MarkCompact\w*|\w*Sweeper\w*|\w*Marking\w*|\w*Evacuat\w*|Heap|GCTracer|MemoryAllocator)$/;

/** The part of the program a sampled symbol belongs to. */
export function areaOf(entry: Pick<PerfEntry, 'dso' | 'symbol'>): string {
  const { dso, symbol } = entry;
  if (dso.startsWith('[kernel') || dso === '[vdso]' || dso === '[vsyscall]') return 'kernel';
  if (dso.startsWith('better_sqlite3')) return 'better-sqlite3 / SQLite';
  if (/^lib(?:c|m|pthread|stdc\+\+|gcc_s)[.-]/.test(dso) || dso.startsWith('ld-linux'))
    return 'libc and system libraries';
  if (dso === 'node' || dso.endsWith('/node')) {
    return isGarbageCollection(symbol) ? 'V8 garbage collection' : 'node binary: builtins and runtime';
  }
  if (dso.startsWith('[JIT]') || /^perf-\d+\.map$/.test(dso)) return jitArea(symbol);
  if (dso === '[unknown]') return 'unknown';
  return `other: ${dso}`;
}

function isGarbageCollection(symbol: string): boolean {
  const inside = /^v8::internal::(?:\(anonymous namespace\)::)?([A-Za-z_]\w*)/.exec(symbol);
  return inside !== null && GC_CLASS.test(inside[1] as string);
}

/** `JS:*onData file:///srv/imgcache/dist/src/server/session.js:12:3` (--perf-basic-prof); `*` optimized, `~` not */
function jitArea(symbol: string): string {
  if (!symbol.startsWith('JS:')) return 'JIT: V8 stubs and handlers';
  const modules = /^.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(symbol);
  if (modules) return `JS: ${modules[1]}`;
  if (/\snode:/.test(symbol)) return 'JS: node core';
  const own = /^.*\/(src\/protocol|src\/server|src|machines|db|client)\/\S*$/.exec(symbol);
  if (own) return `JS: ${own[1]}`;
  return 'JS: other';
}

/** The share of each area and the `topCount` symbols with the most samples. */
export function summarizePerfReport(
  report: PerfReport,
  settings: { command: string; mainThreadShare: number; lateStartMs: number; topCount?: number },
): PerfProfileSummary {
  const samples = report.entries.reduce((sum, entry) => sum + entry.samples, 0);
  const total = Math.max(1, samples);
  const bySymbol = new Map<string, PerfSymbol>();
  const areas = new Map<string, number>();
  for (const entry of report.entries) {
    const area = areaOf(entry);
    areas.set(area, (areas.get(area) ?? 0) + entry.samples);
    const name = shortSymbol(entry.symbol);
    const dso = shortDso(entry.dso);
    const key = `${dso}\n${name}`;
    const known = bySymbol.get(key) ?? { name, dso, area, samples: 0, share: 0 };
    known.samples += entry.samples;
    bySymbol.set(key, known);
  }
  const top = [...bySymbol.values()]
    .sort((a, b) => b.samples - a.samples)
    .slice(0, settings.topCount ?? 20)
    .map((symbol) => ({ ...symbol, share: symbol.samples / total }));
  return {
    profiler: 'perf',
    command: settings.command,
    samples,
    cpuMs: report.eventCount / 1e6,
    mainThreadShare: settings.mainThreadShare,
    lateStartMs: settings.lateStartMs,
    top,
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, count]) => ({ area, samples: count, share: count / total })),
  };
}

/** A JIT symbol names its script by path or URL: keep the part from node_modules/ or the package's own folders. */
function shortSymbol(symbol: string): string {
  return symbol
    .replace(/(?:file:\/\/)?\/\S*\/node_modules\//, '')
    .replace(/(?:file:\/\/)?\/\S*\/(?:dist\/)?((?:src|machines|db|client|bench)\/)/, '$1');
}

/** `[JIT] tid 1234`: one object for all JIT code, whatever the thread */
function shortDso(dso: string): string {
  return dso.startsWith('[JIT]') ? '[JIT]' : dso;
}

// ---- Running perf (I/O) ----

const execFileAsync = promisify(execFile);
const PROBE_DEADLINE_MS = 10_000;
const STOP_DEADLINE_MS = 15_000;
const REPORT_DEADLINE_MS = 120_000;
/** samples a second on each thread; odd, so as not to beat with timers */
export const PERF_FREQUENCY = 999;

/** null when `perf record` works here, else why not (not installed, or refused by perf_event_paranoid) */
export async function perfUnavailable(): Promise<string | null> {
  try {
    await execFileAsync('perf', ['record', '-e', 'cpu-clock', '-o', '/dev/null', '--', 'true'], {
      timeout: PROBE_DEADLINE_MS,
    });
    return null;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') return 'perf is not installed';
    const said = ((failure.stderr ?? '').trim().split('\n')[0] ?? '').replace(/^Error:\s*/, '').replace(/\.$/, '');
    return `perf record failed${said === '' ? '' : `: ${said}`}`;
  }
}

/** The node options that name JIT frames for perf; V8's log files (which the option also writes) go to `dir`. */
export function perfNodeOptions(dir: string): string[] {
  return ['--perf-basic-prof', `--logfile=${dir}/v8.log`];
}

export interface PerfRecording {
  /** SIGINT (perf writes its file and exits), SIGKILL after 15 s */
  stop(): Promise<void>;
}

/** `perf record` of every thread of `pid` on cpu-clock into `file`, samples timed on the monotonic clock. */
export function recordPerf(pid: number, file: string): PerfRecording {
  const args = ['record', '-e', 'cpu-clock', '-F', String(PERF_FREQUENCY), '-k', 'mono', '-p', String(pid), '-o', file];
  const child = spawn('perf', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').catch(() => undefined);
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await settle(child, exited);
      }
      if (child.exitCode !== 0 && child.exitCode !== null) {
        throw new Error(`perf record exited with ${child.exitCode}: ${stderr.trim()}`);
      }
    },
  };
}

async function settle(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  const deadline = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(deadline);
  }
}

/**
 * The samples of `file` taken in `windowMicros` (microseconds on the monotonic clock, as the bench measures its
 * window), summarized; `pid` is the recorded process (its main thread has the same id).
 */
export async function reportPerf(
  file: string,
  pid: number,
  windowMicros: [number, number],
  command: string,
): Promise<PerfProfileSummary> {
  const seconds = (micros: number) => (micros / 1e6).toFixed(6);
  const time = `--time=${seconds(windowMicros[0])},${seconds(windowMicros[1])}`;
  const report = async (...args: string[]) =>
    (
      await execFileAsync('perf', ['report', '-i', file, ...args], {
        timeout: REPORT_DEADLINE_MS,
        maxBuffer: 256 * 1024 * 1024,
      })
    ).stdout;
  const header = await report('--header-only');
  const bySymbol = parsePerfReport(await report('--stdio', '--no-children', '-n', '--sort', 'dso,sym', time));
  const byThread = parseSamplesByThread(await report('--stdio', '--no-children', '-n', '--sort', 'pid', time));
  const threadSamples = [...byThread.values()].reduce((sum, count) => sum + count, 0);
  const firstSample = parseFirstSampleSeconds(header);
  const lateStartMs = firstSample === null ? 0 : Math.max(0, firstSample * 1000 - windowMicros[0] / 1000);
  return summarizePerfReport(bySymbol, {
    command,
    mainThreadShare: threadSamples === 0 ? 0 : (byThread.get(pid) ?? 0) / threadSamples,
    lateStartMs,
  });
}

/** V8 writes JIT symbols for perf to this fixed file (not configurable); remove it once perf has read it. */
export function removePerfMap(pid: number): void {
  rmSync(`/tmp/perf-${pid}.map`, { force: true });
}
