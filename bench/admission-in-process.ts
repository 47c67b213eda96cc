/**
 * The cost of admission in the machines alone, in a process of its own (run with --expose-gc, so the heap can be
 * measured after a full collection):
 *
 *   node --expose-gc --import tsx bench/admission-in-process.ts <sessions> <batch>
 *
 * Starts the admission actor with capacity `sessions`, then admits that many sessions the way the glue does: CONNECT,
 * and on `admitted` a subscription to the session's effects and its HELLO, until its WELCOME. Every session stays
 * open (real timers: the handshake and idle `after` delays). Times each batch of `batch` admissions and prints, as
 * one JSON line, the time of each batch, the total, and the heap per open session. A throwaway actor admits
 * sessions first, so that the batches at 100 open are not the JIT compiler's warm-up.
 */
import { performance } from 'node:perf_hooks';
import { createActor } from 'xstate';
import { admissionMachine } from '../machines/admission.machine.ts';
import { DEFAULT_TIER_TABLE } from '../machines/tiers.ts';

export interface AdmissionBatch {
  /** sessions open when the batch started */
  openBefore: number;
  /** mean time to admit one session of the batch, microseconds */
  microsecondsPerSession: number;
}

export interface InProcessAdmission {
  sessions: number;
  totalSeconds: number;
  batches: AdmissionBatch[];
  heapBytesPerSession: number;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const sessions = Number(process.argv[2] ?? 10_000);
const batchSize = Number(process.argv[3] ?? 100);

/** An admission actor of capacity `capacity` whose every admitted session is sent its HELLO at once. */
function startAdmission(capacity: number) {
  const actor = createActor(admissionMachine, {
    input: {
      capacity,
      retryAfterMs: 1_000,
      sessionInput: {
        supportedVersions: [1],
        tiers: DEFAULT_TIER_TABLE,
        handshakeTimeoutMs: 600_000,
        idleTimeoutMs: 3_600_000,
      },
    },
  });
  const counts = { welcomed: 0 };
  actor.on('admitted', ({ connection, session }) => {
    session.on('*', (effect) => {
      if (effect.type === 'welcome') counts.welcomed++;
    });
    actor.send({ type: 'CLAIM_SLOT', connection }); // [P-43] the HELLO claims a slot, as the glue does
    session.send({
      type: 'HELLO',
      versions: [1],
      identity: { name: `client-${connection}`, code: 100 + (connection % 900) },
    });
  });
  actor.on('rejected', () => {
    throw new Error('a session was rejected below capacity');
  });
  actor.start();
  return { actor, counts };
}

const WARM_UP_SESSIONS = 2_000;
const warmUp = startAdmission(WARM_UP_SESSIONS);
for (let connection = 1; connection <= WARM_UP_SESSIONS; connection++) {
  warmUp.actor.send({ type: 'CONNECT', connection });
}
for (const { session } of warmUp.actor.getSnapshot().context.sessions.values()) session.stop();
warmUp.actor.stop();

const { actor: admission, counts } = startAdmission(sessions);
gc();
const heapBefore = process.memoryUsage().heapUsed;
const batches: AdmissionBatch[] = [];
const startedAt = performance.now();
let connection = 0;
while (connection < sessions) {
  const openBefore = connection;
  const count = Math.min(batchSize, sessions - connection);
  const batchStart = performance.now();
  for (let index = 0; index < count; index++) admission.send({ type: 'CONNECT', connection: ++connection });
  batches.push({ openBefore, microsecondsPerSession: ((performance.now() - batchStart) * 1000) / count });
}
const totalSeconds = (performance.now() - startedAt) / 1000;
gc();
const heapAfter = process.memoryUsage().heapUsed;
if (counts.welcomed !== sessions || admission.getSnapshot().context.open !== sessions) {
  throw new Error(`admitted ${admission.getSnapshot().context.open} and welcomed ${counts.welcomed} of ${sessions}`);
}
const result: InProcessAdmission = {
  sessions,
  totalSeconds,
  batches,
  heapBytesPerSession: (heapAfter - heapBefore) / sessions,
};
process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
