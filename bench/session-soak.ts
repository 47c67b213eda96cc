/**
 * The soak: many short sessions, one after another, against a real imgcache process, and the server's resident
 * memory sampled as they go. Each session is what a scripted client does: connect, HELLO, wait for the WELCOME,
 * `list`, `get` of a small image (read to its END, then its RECEIVED [P-40]), `exit`, wait for the server to close. `concurrency` sessions run at once, each replaced when it ends. First
 * `warmUpSessions` sessions (the JIT, the JS heap, SQLite's page cache and the allocator reach their working size),
 * then `sessions` measured ones; then the load stops and the server is watched for `settleMs`, the last sample of
 * which is "after the load". Loopback only; bounded by the session count and by `deadlineMs`.
 *
 * Each sample reads VmRSS from /proc/<pid>/status and the resident size of the [heap] mapping from /proc/<pid>/smaps:
 * the brk heap, where the main thread's malloc puts its allocations (SQLite's page cache among them), apart from the
 * JS heap (mapped elsewhere), whose size swings with the garbage collector's cycle.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeJsonFrame, MessageType } from '../src/protocol/index.ts';
import { FrameSkipper } from './frame-skipper.ts';
import { cpuTimeMs, rssBytes } from './proc-stats.ts';

export interface SoakOptions {
  port: number;
  /** the server's process, whose /proc/<pid> is read */
  pid: number;
  /** the image each session gets (a small one: the soak is about sessions, not bytes) */
  image: string;
  warmUpSessions: number;
  sessions: number;
  concurrency: number;
  /** RSS samples over the measured sessions (the first at 0 sessions, the last at `sessions`) */
  samples: number;
  /** ms the server is watched after the last session, sampled every `settleSampleMs` */
  settleMs: number;
  settleSampleMs: number;
  /** the whole soak fails past this many ms */
  deadlineMs: number;
}

export interface RssSample {
  /** measured sessions completed when the sample was taken */
  sessions: number;
  /** since the measured sessions started */
  seconds: number;
  /** false while sessions run, true once the load stopped */
  idle: boolean;
  rssBytes: number;
  /** resident bytes of the [heap] mapping (the main thread's malloc heap) */
  brkHeapBytes: number;
}

export interface SoakResult {
  image: string;
  warmUpSessions: number;
  sessions: number;
  concurrency: number;
  /** the measured sessions' wall time */
  seconds: number;
  sessionsPerSecond: number;
  /** RSS once the warm-up sessions are done */
  rssAfterWarmUpBytes: number;
  /**
   * the highest RSS sampled during the warm-up (ten times as often as during the soak) and at its end: the level the
   * soak is compared with. Under a steady load RSS swings by several MiB with the collector's cycle, so one sample can
   * fall low in it; a leak shows as the settled level above everything the warm-up reached.
   */
  rssWarmUpPeakBytes: number;
  /** RSS right after the last measured session */
  rssAfterSessionsBytes: number;
  /** RSS at the end of the settle window, the load stopped `settleMs` before */
  rssAfterLoadBytes: number;
  settleMs: number;
  /** (rssAfterLoad - rssWarmUpPeak) / rssWarmUpPeak */
  growthRatio: number;
  /** (rssAfterSessions - rssAfterWarmUp) / sessions */
  growthBytesPerSession: number;
  /** growth of the [heap] mapping from the warm-up to the end of the settle window, per measured session */
  brkHeapGrowthBytesPerSession: number;
  serverCpuMicrosecondsPerSession: number;
  /** over the sessions, then over the settle window */
  curve: RssSample[];
}

export async function runSessionSoak(options: SoakOptions): Promise<SoakResult> {
  const giveUpAt = performance.now() + options.deadlineMs;
  const frames = {
    hello: encodeJsonFrame(MessageType.HELLO, { versions: [1], client: 'imgcache-soak/1' }),
    list: encodeJsonFrame(MessageType.REQUEST, { id: 1, command: 'list' }),
    get: encodeJsonFrame(MessageType.REQUEST, { id: 2, command: 'get', image: options.image }),
    // [P-40] the receipt of the get's stream, sent with the exit in one write
    exit: Buffer.concat([
      encodeJsonFrame(MessageType.RECEIVED, { id: 2 }),
      encodeJsonFrame(MessageType.REQUEST, { id: 3, command: 'exit' }),
    ]),
  };
  const every = Math.max(1, Math.floor(options.sessions / Math.max(1, options.samples)));
  // The warm-up's RSS is sampled ten times as often as the soak's, to find the top of its swings.
  const warmUpEvery = Math.max(1, Math.floor(every / 10));
  let warmUpPeakBytes = 0;
  await runSessions(options.port, frames, options.warmUpSessions, options.concurrency, giveUpAt, (done) => {
    if (done % warmUpEvery === 0) warmUpPeakBytes = Math.max(warmUpPeakBytes, rssBytes(options.pid));
  });
  const startedAt = performance.now();
  const sample = (sessions: number, idle: boolean): RssSample => ({
    sessions,
    seconds: (performance.now() - startedAt) / 1000,
    idle,
    rssBytes: rssBytes(options.pid),
    brkHeapBytes: brkHeapBytes(options.pid),
  });
  const first = sample(0, false);
  const curve: RssSample[] = [first];
  warmUpPeakBytes = Math.max(warmUpPeakBytes, first.rssBytes);
  const cpuBefore = cpuTimeMs(options.pid);
  await runSessions(options.port, frames, options.sessions, options.concurrency, giveUpAt, (done) => {
    if (done % every === 0 || done === options.sessions) curve.push(sample(done, false));
  });
  const seconds = (performance.now() - startedAt) / 1000;
  const cpuMs = cpuTimeMs(options.pid) - cpuBefore;
  const afterSessions = curve.at(-1) ?? first;
  const settleEnds = performance.now() + options.settleMs;
  let last = afterSessions;
  while (performance.now() < settleEnds) {
    await sleep(Math.min(options.settleSampleMs, Math.max(0, settleEnds - performance.now())));
    last = sample(options.sessions, true);
    curve.push(last);
  }
  const perSession = (bytes: number) => (options.sessions > 0 ? bytes / options.sessions : 0);
  return {
    image: options.image,
    warmUpSessions: options.warmUpSessions,
    sessions: options.sessions,
    concurrency: options.concurrency,
    seconds,
    sessionsPerSecond: options.sessions / seconds,
    rssAfterWarmUpBytes: first.rssBytes,
    rssWarmUpPeakBytes: warmUpPeakBytes,
    rssAfterSessionsBytes: afterSessions.rssBytes,
    rssAfterLoadBytes: last.rssBytes,
    settleMs: options.settleMs,
    growthRatio: (last.rssBytes - warmUpPeakBytes) / warmUpPeakBytes,
    growthBytesPerSession: perSession(afterSessions.rssBytes - first.rssBytes),
    brkHeapGrowthBytesPerSession: perSession(last.brkHeapBytes - first.brkHeapBytes),
    serverCpuMicrosecondsPerSession: perSession(cpuMs * 1000),
    curve,
  };
}

/** Resident bytes of the process's [heap] mapping (0 when it has none). */
export function brkHeapBytes(pid: number): number {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const start = smaps.search(/^\S+ \S+ \S+ \S+ \S+\s+\[heap\]$/m);
  if (start < 0) return 0;
  const rss = /^Rss:\s+(\d+) kB/m.exec(smaps.slice(start));
  return rss ? Number(rss[1]) * 1024 : 0;
}

const SESSION_DEADLINE_MS = 30_000;

interface SessionFrames {
  hello: Buffer;
  list: Buffer;
  get: Buffer;
  exit: Buffer;
}

/** `count` sessions, `concurrency` at a time; `onDone(n)` after the n-th ends. Fails on the first broken session. */
async function runSessions(
  port: number,
  frames: SessionFrames,
  count: number,
  concurrency: number,
  giveUpAt: number,
  onDone: (done: number) => void,
): Promise<void> {
  let started = 0;
  let done = 0;
  const lane = async () => {
    while (started < count) {
      if (performance.now() > giveUpAt) throw new Error(`soak: deadline passed after ${done} of ${count} sessions`);
      started++;
      await oneSession(port, frames);
      done++;
      onDone(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

/** HELLO, WELCOME; list, REPLY; get, REPLY, DATA..., END; RECEIVED + exit, REPLY; the server's close. */
function oneSession(port: number, frames: SessionFrames): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let step: 'welcome' | 'list' | 'get' | 'exit' | 'close' = 'welcome';
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`soak: a session stalled at ${step}`)), SESSION_DEADLINE_MS);
    const skipper = new FrameSkipper(
      (type, _length, body) => {
        if (step === 'welcome' && type === MessageType.WELCOME) {
          step = 'list';
          socket.write(frames.list);
        } else if (step === 'list' && type === MessageType.REPLY) {
          step = 'get';
          socket.write(frames.get);
        } else if (step === 'get' && (type === MessageType.REPLY || type === MessageType.DATA)) {
          // the stream's REPLY and its bytes (counted by the skipper, never kept)
        } else if (step === 'get' && type === MessageType.END) {
          step = 'exit';
          socket.write(frames.exit);
        } else if (step === 'exit' && type === MessageType.REPLY) {
          step = 'close';
        } else {
          fail(new Error(`soak: unexpected frame 0x${type.toString(16)} at ${step}: ${body?.toString() ?? ''}`));
        }
      },
      [MessageType.REJECT, MessageType.ERROR, MessageType.NOTICE],
    );
    socket.on('connect', () => socket.write(frames.hello));
    socket.on('data', (chunk: Buffer) => skipper.push(chunk, 0, chunk.length));
    socket.on('error', (error) => fail(error));
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      clearTimeout(timer);
      if (step === 'close') resolve();
      else reject(new Error(`soak: the server closed the session at ${step}`));
    });
  });
}
