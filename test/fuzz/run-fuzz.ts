/**
 * The long fuzz run (`npm run fuzz`): the protocol properties of `npm test` and the server fuzz, with many more
 * cases, and their throughput.
 *
 *   tsx test/fuzz/run-fuzz.ts [--cases N] [--server-cases M] [--seed S] [--case I] [--only protocol|server]
 *
 * --cases is per protocol property (default 100000), --server-cases the connections made to a real server on
 * 127.0.0.1 (default 2000). The seed is random unless given (or FUZZ_SEED is set); a failure prints the seed and
 * the case, which `--seed S --case I` (or FUZZ_SEED and FUZZ_CASE) replays alone. Exit status 1 on a failure.
 */
import { parseArgs } from 'node:util';
import { startTestServer } from '../helpers/test-server.ts';
import { decoderMatchesReference, validFramesRoundTrip } from './frame-fuzz.ts';
import { parsersThrowOnlyCodedErrors, validMessagesRoundTrip } from './message-fuzz.ts';
import { proxyHeaderParseIsPrefixStable } from './proxy-header-fuzz.ts';
import { type FuzzSettings, fuzzSettings, parseUnsigned } from './random.ts';
import { type Property, runCases, runCasesAsync } from './run-cases.ts';
import { goodClientSession, serverCase } from './server-fuzz.ts';

const PROTOCOL_PROPERTIES: ReadonlyArray<[string, Property]> = [
  ['decoder matches the reference', decoderMatchesReference],
  ['valid frames round-trip', validFramesRoundTrip],
  ['parsers throw only coded errors', parsersThrowOnlyCodedErrors],
  ['valid messages round-trip', validMessagesRoundTrip],
  ['PROXY header parse prefix-stable', proxyHeaderParseIsPrefixStable],
];
const SERVER_CONCURRENCY = 8;
const DEADLINE_MS = 10_000;

function report(name: string, cases: number, startedAt: number): void {
  const seconds = (performance.now() - startedAt) / 1000;
  const rate = Math.round(cases / Math.max(seconds, 1e-9));
  console.log(
    `  ${name.padEnd(34)} ${String(cases).padStart(7)} cases  ${seconds.toFixed(1).padStart(6)} s  ${rate} cases/s`,
  );
}

function fuzzProtocol(settings: FuzzSettings, cases: number): void {
  for (const [name, property] of PROTOCOL_PROPERTIES) {
    const startedAt = performance.now();
    report(name, runCases(name, property, settings, cases), startedAt);
  }
}

async function fuzzServer(settings: FuzzSettings, cases: number): Promise<void> {
  const running = await startTestServer({ codes: [108], capacity: 4 * SERVER_CONCURRENCY, idleTimeoutMs: 60_000 });
  try {
    const target = { port: running.port, ...(await goodClientSession(running.port, DEADLINE_MS)) };
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const startedAt = performance.now();
    const name = 'server answers as the spec says';
    report(name, await runCasesAsync(name, serverCase(target), settings, cases, SERVER_CONCURRENCY), startedAt);
    await goodClientSession(running.port, DEADLINE_MS);
    global.gc?.();
    const growth = (process.memoryUsage().heapUsed - heapBefore) / 1_048_576;
    console.log(`  a good client is still served; heap (server and fuzzer) grew by ${growth.toFixed(1)} MiB`);
  } finally {
    await running.stop();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '100000' },
      'server-cases': { type: 'string', default: '2000' },
      seed: { type: 'string' },
      case: { type: 'string' },
      only: { type: 'string' },
    },
  });
  const settings = fuzzSettings({
    ...process.env,
    ...(values.seed === undefined ? {} : { FUZZ_SEED: values.seed }),
    ...(values.case === undefined ? {} : { FUZZ_CASE: values.case }),
  });
  const only = values.only;
  if (only !== undefined && only !== 'protocol' && only !== 'server')
    throw new Error('--only takes protocol or server');
  console.log(`fuzz seed ${settings.seed}${settings.onlyCase === null ? '' : `, case ${settings.onlyCase} only`}`);
  try {
    if (only !== 'server') fuzzProtocol(settings, parseUnsigned(values.cases, '--cases'));
    if (only !== 'protocol') await fuzzServer(settings, parseUnsigned(values['server-cases'], '--server-cases'));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
  console.log('no property failed');
  return 0;
}

process.exitCode = await main();
