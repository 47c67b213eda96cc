/**
 * One measured run: the load generator against one server, with the server's own accounting read at the edges of
 * the measured window (CPU time from /proc, the history's event count for imgcache) and its peak memory after.
 */
import { machineBusyMs } from './proc-stats.ts';
import { runThreadedLoad } from './threaded-load.ts';
import type { WireProtocol } from './wire-dialects.ts';

export interface RunTarget {
  /** e.g. "imgcache", "baseline", "nginx: 1 worker, sendfile off" */
  server: string;
  port: number;
  protocol: WireProtocol;
  /** image name, or URL path for http */
  target: string;
  /** CPU time of every process of the server so far, ms */
  cpuTimeMs(): number;
  /** peak resident memory of the server's processes so far, bytes */
  peakRssBytes(): number;
  /** events in the server's history so far (imgcache only) */
  eventCount?: () => number;
}

export interface LoadSettings {
  warmupMs: number;
  durationMs: number;
  /** load generator threads */
  threads: number;
}

export interface ServerRun {
  server: string;
  connections: number;
  imageBytes: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  megabytesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** server CPU time per request answered in the window, microseconds */
  serverCpuMicrosPerRequest: number;
  /** server CPU time / window: cores kept busy */
  serverCpuCores: number;
  serverPeakRssBytes: number;
  generatorCpuCores: number;
  /** CPU the rest of the machine used during the window (other programs, interrupts): noise */
  otherCpuCores: number;
  /** history events appended per second in the window (imgcache) */
  eventsPerSecond: number | null;
  errors: number;
  firstErrors: string[];
  reconnects: number;
  /** requests/s of every round, when the best of several rounds is kept */
  rounds?: number[];
  /** the measured window on the machine's monotonic clock, microseconds (the clock of V8's CPU profiles) */
  windowMicros: [start: number, end: number];
}

export async function measureRun(
  target: RunTarget,
  image: { bytes: number },
  connections: number,
  settings: LoadSettings,
): Promise<ServerRun> {
  let serverCpuStart = 0;
  let serverCpuEnd = 0;
  let machineStart = 0;
  let machineEnd = 0;
  let eventsStart = 0;
  let eventsEnd = 0;
  const windowMicros: [number, number] = [0, 0];
  const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);
  const load = await runThreadedLoad(
    {
      port: target.port,
      protocol: target.protocol,
      target: target.target,
      expectedBytes: image.bytes,
      connections,
      warmupMs: settings.warmupMs,
      durationMs: settings.durationMs,
      onWindowStart: () => {
        eventsStart = target.eventCount?.() ?? 0;
        serverCpuStart = target.cpuTimeMs();
        machineStart = machineBusyMs();
        windowMicros[0] = monotonicMicros();
      },
      onWindowEnd: () => {
        windowMicros[1] = monotonicMicros();
        machineEnd = machineBusyMs();
        serverCpuEnd = target.cpuTimeMs();
        eventsEnd = target.eventCount?.() ?? 0;
      },
    },
    settings.threads,
  );
  const windowMs = load.seconds * 1000;
  const serverCpuMs = serverCpuEnd - serverCpuStart;
  return {
    server: target.server,
    connections,
    imageBytes: image.bytes,
    seconds: load.seconds,
    requests: load.requests,
    requestsPerSecond: load.requestsPerSecond,
    megabytesPerSecond: load.megabytesPerSecond,
    p50Ms: load.latencyMs.p50,
    p99Ms: load.latencyMs.p99,
    maxMs: load.latencyMs.max,
    serverCpuMicrosPerRequest: load.requests === 0 ? 0 : (serverCpuMs * 1000) / load.requests,
    serverCpuCores: serverCpuMs / windowMs,
    serverPeakRssBytes: target.peakRssBytes(),
    generatorCpuCores: load.generatorCpuMs / windowMs,
    otherCpuCores: Math.max(0, (machineEnd - machineStart - serverCpuMs - load.generatorCpuMs) / windowMs),
    eventsPerSecond: target.eventCount ? (eventsEnd - eventsStart) / load.seconds : null,
    errors: load.errors,
    firstErrors: load.firstErrors,
    reconnects: load.reconnects,
    windowMicros,
  };
}
