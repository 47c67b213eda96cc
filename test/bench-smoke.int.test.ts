/**
 * The bench's smoke run, so that `npm run bench` cannot rot: the real harness (`bench/run-bench.ts --smoke`: 4 KiB,
 * 2 clients, 0.3 s, no nginx or wrk, small histories) against real server processes on loopback, writing into a
 * temporary folder. Checks that every figure is there and sane, never how fast anything is.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BenchResults } from '../bench/bench-results.ts';
import { FrameSkipper } from '../bench/frame-skipper.ts';
import { HttpResponseSkipper } from '../bench/http-response-skipper.ts';
import type { ServerRun } from '../bench/measure-run.ts';
import { BASELINE_WITH_HISTORY, COMMON_WAY, DESIGN_FLOOR } from '../bench/throughput.ts';
import { PACKAGE_ROOT } from '../src/config.ts';
import { encodeFrame, encodeJsonFrame, MessageType } from '../src/protocol/index.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

/** A smoke run takes 30-80 s on the shared 2-core machine; past this it is stuck, not slow. */
const RUN_DEADLINE_MS = 300_000;

let outDir = '';
let results: BenchResults;
let markdown = '';
let stdout = '';

test.before(async () => {
  outDir = makeTemporaryFolder('imgcache-bench-smoke-test-');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(PACKAGE_ROOT, 'bench/run-bench.ts'), '--smoke', '--out-dir', outDir],
    // A process group of its own: at the deadline the servers it started go with it, not left running.
    { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const deadline = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), RUN_DEADLINE_MS);
  const [status] = (await once(child, 'exit')) as [number | null];
  clearTimeout(deadline);
  if (status !== 0) throw new Error(`the smoke run exited with ${status}:\n${stderr}`);
  results = JSON.parse(readFileSync(path.join(outDir, 'latest.json'), 'utf8')) as BenchResults;
  const page = readdirSync(outDir).find((file) => /^\d{4}-\d{2}-\d{2}\.md$/.test(file));
  if (!page) throw new Error(`no <date>.md in ${outDir}`);
  markdown = readFileSync(path.join(outDir, page), 'utf8');
});

test.after(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

function assertSaneRun(run: ServerRun, imageBytes: number): void {
  assert.is(run.errors, 0, `${run.server}: ${run.firstErrors.join('; ')}`);
  assert.ok(run.requests > 0, `${run.server} answered nothing`);
  assert.is(run.imageBytes, imageBytes);
  assert.ok(run.requestsPerSecond > 0);
  assert.ok(
    Math.abs(run.megabytesPerSecond - (run.requestsPerSecond * imageBytes) / 1e6) < 1e-6 * run.requestsPerSecond,
  );
  assert.ok(run.p50Ms > 0 && run.p50Ms <= run.p99Ms && run.p99Ms <= run.maxMs, `${run.server} latencies`);
  assert.ok(run.serverCpuMicrosPerRequest >= 0);
  assert.ok(run.serverPeakRssBytes > 1024 * 1024, `${run.server} peak RSS`);
}

test('the smoke run measures imgcache, the bare baseline, the baseline + history and the common way at one size, with sane figures', () => {
  assert.is(results.mode, 'smoke');
  assert.is(results.rows.length, 1);
  const [row] = results.rows;
  if (!row) return;
  assert.is(row.connections, 2);
  assertSaneRun(row.imgcache, row.imageBytes);
  assertSaneRun(row.baseline, row.imageBytes);
  assertSaneRun(row.baselineWithHistory, row.imageBytes);
  assert.is(row.baselineWithHistory.server, BASELINE_WITH_HISTORY);
  assertSaneRun(row.designFloor, row.imageBytes);
  assert.is(row.designFloor.server, DESIGN_FLOOR);
  // The design's floor records an event per answer too, and steps a session machine per answer besides.
  assert.ok((row.designFloor.eventsPerSecond ?? 0) > 0);
  assert.ok(
    Math.abs(row.machineCeiling - row.designFloor.requestsPerSecond / row.baselineWithHistory.requestsPerSecond) < 1e-9,
  );
  assert.ok(
    Math.abs(row.versusDesignFloor - row.imgcache.requestsPerSecond / row.designFloor.requestsPerSecond) < 1e-9,
  );
  assertSaneRun(row.commonWay, row.imageBytes);
  assert.is(row.commonWay.server, COMMON_WAY);
  assert.is(row.nginx.length, 0);
  assert.is(row.versusNginx, null);
  assert.ok(row.versusBaseline > 0);
  // One image-served event per answer, committed while serving.
  assert.ok((row.imgcache.eventsPerSecond ?? 0) > 0);
  // The baseline + history commits one event per answer too; the bare baseline has no history.
  assert.ok((row.baselineWithHistory.eventsPerSecond ?? 0) > 0);
  assert.is(row.baseline.eventsPerSecond, null);
  // The common way records its event with its own INSERT before it sends the file.
  assert.ok((row.commonWay.eventsPerSecond ?? 0) > 0);
  assert.ok(Math.abs(row.versusCommonWay - row.imgcache.requestsPerSecond / row.commonWay.requestsPerSecond) < 1e-9);
  assert.ok(Math.abs(row.rssVersusBaseline - row.imgcache.serverPeakRssBytes / row.baseline.serverPeakRssBytes) < 1e-9);
  for (const target of ['imgcache >= 0.8 x (baseline + history) (4 KiB, C=2)', 'imgcache peak RSS <= 1.3 x']) {
    assert.ok(
      results.targets.some((check) => check.target.startsWith(target)),
      `no target check '${target}'`,
    );
  }
  assert.ok(
    Math.abs(row.historyCeiling - row.baselineWithHistory.requestsPerSecond / row.baseline.requestsPerSecond) < 1e-9,
  );
});

test('the history export, the event log and admission are measured too', () => {
  const { history, admission, eventLogCapacity } = results;
  assert.is(history.build.events, results.settings.historyEvents);
  assert.ok(history.export.seconds > 0 && history.export.peakRssBytes > 0);
  assert.ok(history.documentChecked, 'the exported usage document was not whole');
  assert.equal(
    eventLogCapacity.map((entry) => entry.callers),
    [1, 3, 64],
  );
  for (const entry of eventLogCapacity) assert.ok(entry.eventsPerSecond > 0);
  assert.is(admission.inProcess.sessions, results.settings.admissionSessions);
  assert.ok(admission.inProcess.heapBytesPerSession > 0);
  assert.is(admission.overSockets.sessions, results.settings.socketAdmissionSessions);
  assert.ok(admission.overSockets.figures.microsNearFull > 0);
});

test('the memory soak runs its sessions and writes its RSS curve, over the sessions and after the load', () => {
  const { soak } = results;
  assert.ok(soak, 'no soak in the results');
  if (!soak) return;
  assert.is(soak.sessions, results.settings.soakSessions);
  assert.ok(soak.curve.length >= 3, 'a curve of a few samples');
  assert.is(soak.curve[0]?.sessions, 0);
  assert.ok(soak.curve.some((sample) => !sample.idle && sample.sessions === soak.sessions));
  assert.ok(soak.curve.at(-1)?.idle, 'the last sample is taken after the load');
  for (const sample of soak.curve) assert.ok(sample.rssBytes > 1024 * 1024 && sample.brkHeapBytes >= 0);
  assert.is(soak.rssAfterLoadBytes, soak.curve.at(-1)?.rssBytes);
  assert.match(markdown, /## Memory over 200 sessions/);
  assert.ok(results.targets.some((check) => check.target.startsWith('server RSS after 200 sessions')));
});

test("the client's own speed: the real CLI's get of a large image, and its refresh and get pipelined and one at a time", () => {
  const speed = results.clientSpeed;
  assert.ok(speed, 'no client section in the results');
  if (!speed) return;
  assert.is(speed.large.bytes, results.settings.clientLargeBytes);
  assert.ok(speed.large.imgcache.megabytesPerSecond > 0);
  // No nginx in the smoke run: curl is not measured, and the target says so rather than passing.
  assert.is(speed.large.curl, null);
  assert.ok(results.targets.some((check) => check.target.startsWith('`imgcache get` of 4 MiB') && check.met === null));
  assert.equal(
    speed.pipelines.map((run) => run.images),
    [results.settings.clientManyImages, results.settings.clientGetImages],
  );
  for (const run of speed.pipelines) {
    assert.ok(run.pipelined.imagesPerSecond > 0 && run.oneAtATime.imagesPerSecond > 0, run.what);
    assert.is(run.pipelined.seconds.length, results.settings.clientRuns);
    assert.match(run.oneAtATime.command, /^IMGCACHE_MAX_IN_FLIGHT=1 /);
  }
  assert.match(markdown, /## The client: one large image, and many images pipelined/);
});

test('start-up: the CLI and the server timed, compiled and through tsx', () => {
  const { startup } = results;
  for (const what of ['imgcache list (as installed', 'imgcache-server to listening (compiled']) {
    const row = startup.rows.find((entry) => entry.what.startsWith(what));
    assert.ok(row, `no start-up row '${what}'`);
    assert.ok(row && row.runs === 1 && row.medianMs > 0 && row.minMs <= row.maxMs, what);
  }
});

test('the results are written as JSON and as a markdown page that states the machine and the targets', () => {
  assert.ok(existsSync(path.join(outDir, 'latest.json')));
  assert.match(markdown, /^# imgcache benchmark, \d{4}-\d{2}-\d{2} \(smoke run\)/);
  assert.match(markdown, /## Requests per second/);
  assert.match(markdown, new RegExp(`Node ${process.version.replace(/\./g, '\\.')}`));
  assert.match(markdown, /## Targets/);
  assert.ok(results.targets.length > 0);
  assert.is(stdout, markdown, 'the page is also printed');
});

/** Feeds `bytes` to `push` in pieces of `step` bytes (1: a byte at a time). */
function feed(bytes: Buffer, step: number, push: (chunk: Buffer, start: number, end: number) => void): void {
  for (let offset = 0; offset < bytes.length; offset += step) {
    push(bytes, offset, Math.min(bytes.length, offset + step));
  }
}

test('[P-2] [P-24] the generator counts DATA bodies and reports frames, however the bytes are split', () => {
  const image = Buffer.alloc(3000, 7);
  const answer = Buffer.concat([
    encodeJsonFrame(MessageType.REPLY, { id: 1, command: 'get', status: 'ok', stream: true }),
    encodeFrame(MessageType.DATA, image.subarray(0, 1000)),
    encodeFrame(MessageType.DATA, image.subarray(1000)),
    encodeJsonFrame(MessageType.END, { bytes: 3000, sha256: 'x' }),
    encodeJsonFrame(MessageType.ERROR, { id: 2, code: 'quota-exhausted', fatal: true }),
  ]);
  for (const step of [1, 4, 5, 7, 999, answer.length]) {
    const seen: Array<[number, number, string | null]> = [];
    const skipper: FrameSkipper = new FrameSkipper(
      (type, length, body) => {
        const counted = type === MessageType.END ? String(skipper.takeDataBytes()) : null;
        seen.push([type, length, body ? JSON.parse(body.toString()).code : counted]);
      },
      [MessageType.ERROR],
    );
    feed(answer, step, (chunk, start, end) => skipper.push(chunk, start, end));
    assert.equal(
      seen.map(([type, , extra]) => [type, extra]),
      [
        [MessageType.REPLY, null],
        [MessageType.DATA, null],
        [MessageType.DATA, null],
        [MessageType.END, '3000'],
        [MessageType.ERROR, 'quota-exhausted'],
      ],
      `pieces of ${step}`,
    );
  }
});

test('the generator reads keep-alive HTTP responses by Content-Length, however the bytes are split', () => {
  const response = (status: number, body: string) =>
    `HTTP/1.1 ${status} X\r\nServer: nginx\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`;
  const bytes = Buffer.from(response(200, 'a'.repeat(500)) + response(404, 'gone') + response(200, ''), 'latin1');
  for (const step of [1, 3, 64, bytes.length]) {
    const seen: Array<[number, number]> = [];
    const skipper = new HttpResponseSkipper((status, bodyBytes) => seen.push([status, bodyBytes]));
    feed(bytes, step, (chunk, start, end) => skipper.push(chunk, start, end));
    assert.equal(
      seen,
      [
        [200, 500],
        [404, 4],
        [200, 0],
      ],
      `pieces of ${step}`,
    );
  }
});

test.run();
