/**
 * What one step of the session machine costs for a `get`, in a process of its own (run with --expose-gc and a young
 * generation large enough that no collection runs inside a batch, so that the heap's growth over a batch is what the
 * batch allocated; the young generation starts small and grows only after collections, so its least size is set too:
 * with the largest alone, scavenges inside each batch hid all but a few per cent of what it allocated):
 *
 *   node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 --import tsx bench/xstate-step.ts \
 *     [gets] [batch] [anonymous|keyed]
 *
 * One session actor is admitted (HELLO, the WELCOME's REPLY_SENT), then serves `gets` images the way the glue drives
 * it for each one: REQUEST (a get of an image the catalog has, the effect `serve-image` handled by a listener that
 * does nothing), REPLY_SENT once the END is written, and DELIVERED when its RECEIVED comes: three events per get.
 * `keyed`: the session is a keyed identity's, granted a quota over a day [P-64] (the only session of its identity,
 * so the glue finds before each REQUEST the quota the session already has, and sends no QUOTA).
 * Prints one JSON line: nanoseconds (CPU time of the process, not wall time: a shared machine's other work does
 * not count) and bytes allocated per event and per get, the median over the batches. The first
 * tenth of the gets warm the JIT compiler up and are not counted. Bounded: `gets` (default 200,000) and a 60 s limit.
 */
import { performance } from 'node:perf_hooks';
import { createActor } from 'xstate';
import { sessionMachine } from '../machines/session.machine.ts';
import type { Request } from '../src/protocol/messages.ts';
import { BENCH_TIERS } from './bench-fixtures.ts';

export interface XstateStep {
  session: 'anonymous' | 'keyed';
  gets: number;
  eventsPerGet: number;
  nanosecondsPerEvent: number;
  bytesPerEvent: number;
  nanosecondsPerGet: number;
  bytesPerGet: number;
}

const EVENTS_PER_GET = 3;
const TIME_LIMIT_MS = 60_000;

const gc = (globalThis as { gc?: () => void }).gc;
const nodeOptions = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
if (gc === undefined || !nodeOptions.includes('--min-semi-space-size')) {
  throw new Error('run with --expose-gc --min-semi-space-size=64 --max-semi-space-size=64');
}
const gets = Number(process.argv[2] ?? 200_000);
const batch = Number(process.argv[3] ?? 2_000);
const keyed = process.argv[4] === 'keyed';

const actor = createActor(sessionMachine, {
  input: {
    connection: 1,
    supportedVersions: [1],
    tiers: BENCH_TIERS,
    handshakeTimeoutMs: 600_000,
    idleTimeoutMs: 3_600_000,
  },
});
let served = 0;
actor.on('serve-image', () => {
  served++;
});
actor.start();
const identity = { name: 'client-1', code: 100 };
const quota = {
  limit: 1_000_000_000,
  used: 0,
  remaining: 1_000_000_000,
  period: 'day',
  resetsAt: '2026-12-01T00:00:00.000Z',
};
const grant = { identity: { ...identity, tier: 'bench', canReadUsage: true, identity: 'alice' }, quota };
actor.send({ type: 'HELLO', versions: [1], identity, ...(keyed ? { grant } : {}) });
actor.send({ type: 'REPLY_SENT', at: performance.now(), receiptPending: false });
const quotaLeft = actor.getSnapshot().context.quota.remaining;
if (actor.getSnapshot().value !== 'active' || quotaLeft < gets) {
  throw new Error(`the session is not active with ${gets} gets to spare: ${JSON.stringify(actor.getSnapshot().value)}`);
}

// The requests are built before the loop, as the glue has them parsed before it sends them.
const requests: Request[] = Array.from({ length: gets }, (_, index) => ({
  id: index + 1,
  command: 'get',
  image: 'cat.png',
}));

function oneGet(request: Request): void {
  actor.send({ type: 'REQUEST', request, imageExists: true, imageUnchanged: false });
  actor.send({ type: 'REPLY_SENT', at: performance.now(), receiptPending: true });
  actor.send({ type: 'DELIVERED', at: performance.now(), receiptPending: false });
}

const warmUp = Math.floor(gets / 10);
for (let index = 0; index < warmUp; index++) oneGet(requests[index] as Request);

const nanos: number[] = [];
const bytes: number[] = [];
const deadline = performance.now() + TIME_LIMIT_MS;
for (let start = warmUp; start + batch <= gets && performance.now() < deadline; start += batch) {
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const before = process.cpuUsage();
  for (let index = start; index < start + batch; index++) oneGet(requests[index] as Request);
  const cpu = process.cpuUsage(before);
  const heapAfter = process.memoryUsage().heapUsed;
  nanos.push(((cpu.user + cpu.system) * 1000) / batch);
  bytes.push((heapAfter - heapBefore) / batch);
}
actor.stop();
if (served < gets - (gets % batch) - batch) throw new Error(`only ${served} of ${gets} gets were served`);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const perGetNs = median(nanos);
const perGetBytes = median(bytes);
const result: XstateStep = {
  session: keyed ? 'keyed' : 'anonymous',
  gets: nanos.length * batch,
  eventsPerGet: EVENTS_PER_GET,
  nanosecondsPerEvent: Math.round(perGetNs / EVENTS_PER_GET),
  bytesPerEvent: Math.round(perGetBytes / EVENTS_PER_GET),
  nanosecondsPerGet: Math.round(perGetNs),
  bytesPerGet: Math.round(perGetBytes),
};
console.log(JSON.stringify(result));
