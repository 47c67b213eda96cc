/**
 * The load generator spread over worker threads, each with its share of the connections, all starting together; the
 * window hooks run on the calling thread, and the results are merged (latency percentiles over every sample).
 * With one thread it is the plain generator.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { summarizeLatencies } from './latency-samples.ts';
import { type LoadOptions, type LoadResult, runLoad } from './load-generator.ts';

/**
 * A worker thread does not get the TypeScript loader of its parent (Node 20): it registers tsx itself, as
 * src/bin/imgcache-server.js does, before it loads the worker module.
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./load-worker.ts', import.meta.url).href)}); })`;

export async function runThreadedLoad(options: LoadOptions, threads: number): Promise<LoadResult> {
  const count = Math.max(1, Math.min(threads, options.connections));
  if (count === 1) return runLoad(options);
  const { onWindowStart, onWindowEnd, ...shared } = options;
  const workers = Array.from({ length: count }, (_, index) => {
    const connections = Math.floor(options.connections / count) + (index < options.connections % count ? 1 : 0);
    return new Worker(WORKER_BOOTSTRAP, { eval: true, workerData: { ...shared, connections } });
  });
  try {
    await Promise.all(workers.map((worker) => once(worker, 'message')));
    const results = workers.map((worker) => once(worker, 'message').then(([result]) => result as LoadResult));
    for (const worker of workers) worker.postMessage('go');
    let cpuBefore = process.cpuUsage();
    let cpuMs = 0;
    const opened = setTimeout(() => {
      onWindowStart?.();
      cpuBefore = process.cpuUsage();
    }, options.warmupMs);
    const closed = setTimeout(() => {
      const cpu = process.cpuUsage(cpuBefore);
      cpuMs = (cpu.user + cpu.system) / 1000;
      onWindowEnd?.();
    }, options.warmupMs + options.durationMs);
    const parts = await Promise.all(results);
    clearTimeout(opened);
    clearTimeout(closed);
    return merge(parts, cpuMs);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

function merge(parts: readonly LoadResult[], generatorCpuMs: number): LoadResult {
  const first = parts[0] as LoadResult;
  const sum = (pick: (part: LoadResult) => number) => parts.reduce((total, part) => total + pick(part), 0);
  const seconds = sum((part) => part.seconds) / parts.length;
  const requests = sum((part) => part.requests);
  const bodyBytes = sum((part) => part.bodyBytes);
  const dropped = sum((part) => part.latencyMs.dropped);
  return {
    protocol: first.protocol,
    connections: sum((part) => part.connections),
    seconds,
    requests,
    bodyBytes,
    requestsPerSecond: requests / seconds,
    megabytesPerSecond: bodyBytes / 1e6 / seconds,
    latencyMs: summarizeLatencies(
      parts.map((part) => part.samples),
      dropped,
    ),
    errors: sum((part) => part.errors),
    firstErrors: parts.flatMap((part) => part.firstErrors).slice(0, 5),
    reconnects: sum((part) => part.reconnects),
    generatorCpuMs,
    samples: new Float64Array(0),
  };
}
