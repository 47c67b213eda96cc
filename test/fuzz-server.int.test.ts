/**
 * A bounded server fuzz over real sockets: random and mutated bytes, before and after the handshake, each answered
 * exactly as the spec prescribes (a documented REJECT or ERROR, or a valid answer) and followed by a close; then a
 * well-behaved client is still served. The seed is random on each run and printed in any failure (FUZZ_SEED and
 * FUZZ_CASE replay it); the long run is `npm run fuzz`.
 */
import { test } from 'uvu';
import { fuzzSettings } from './fuzz/random.ts';
import { runCasesAsync } from './fuzz/run-cases.ts';
import { goodClientSession, serverCase } from './fuzz/server-fuzz.ts';
import { startTestServer, type TestServer } from './helpers/test-server.ts';

const CASES = 200;
const CONCURRENCY = 4;
/** a hang guard, never reached by a healthy server: the answers of a case come in milliseconds */
const DEADLINE_MS = 10_000;

let running: TestServer;

test.before(async () => {
  // Capacity above the concurrency: no case is turned away with server-full, so every answer is predictable.
  running = await startTestServer({ codes: [108], capacity: 4 * CONCURRENCY, idleTimeoutMs: 60_000 });
});

test.after(async () => {
  await running.stop();
});

test('[P-3] [P-4] [P-5] [P-9] [P-11] [P-26] fuzz: every hostile connection gets its documented answer, then a good client is served', async () => {
  const target = { port: running.port, ...(await goodClientSession(running.port, DEADLINE_MS)) };
  await runCasesAsync('server answers as the spec says', serverCase(target), fuzzSettings(), CASES, CONCURRENCY);
  await goodClientSession(running.port, DEADLINE_MS);
});

test.run();
