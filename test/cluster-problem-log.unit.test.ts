/**
 * The log of a problem that repeats while PostgreSQL is out of reach (src/cluster/problem-log.ts): an idle node
 * wrote six warn lines a second, each with a stack (its heartbeat, its registry listener, its registry reads), and
 * nothing when the outage was over. Now: one line with the error when it begins, a short line at most every 10 s
 * with the failures since the last one, one line when it is over.
 */
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLUSTER_PROBLEM, PROBLEM_REPEAT_MS, problemLog, REGISTRY_PROBLEM } from '../src/cluster/problem-log.ts';

/** A logger whose JSON lines land in `lines`, one object each (pino writes one line per call). */
function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info', base: undefined }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { lines, logger };
}

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

test('an idle node out of reach for 60 s: one line with the error, a short one every 10 s with the counts, one at the end', () => {
  const { lines, logger } = capture();
  let clock = 0;
  const log = problemLog(logger, CLUSTER_PROBLEM, { now: () => clock });
  let failures = 0;
  // a heartbeat every second and the registry listener every 2 s, from t = 0 to 59 s
  for (let at = 0; at < 60_000; at += 1_000) {
    clock = at;
    log.failed(refused, 'heartbeat');
    failures++;
    if (at % 2_000 === 0) {
      log.failed(refused, 'registry listener');
      failures++;
    }
  }
  clock = 60_000;
  log.succeeded();
  log.succeeded(); // nothing more to say
  assert.equal(
    lines.map((line) => line.msg),
    [CLUSTER_PROBLEM.began, ...Array(5).fill(CLUSTER_PROBLEM.goesOn), CLUSTER_PROBLEM.ended],
  );
  const [began = {}, goesOn, , , , last, ended] = lines;
  assert.is((began.err as { message: string }).message, refused.message, 'the first line has the whole error');
  assert.is(began.what, 'heartbeat');
  assert.is(goesOn?.err, undefined, 'a repeat has no stack');
  assert.equal(goesOn?.failures, { 'registry listener': 5, heartbeat: 10 }, 'the failures since the line before');
  assert.is(goesOn?.code, 'ECONNREFUSED');
  assert.equal(last?.failures, { heartbeat: 10, 'registry listener': 5 });
  assert.equal(ended, { level: 40, time: ended?.time, outageMs: 60_000, failures, msg: CLUSTER_PROBLEM.ended });
  assert.ok(
    lines.every((line) => line.level === 40),
    'warn lines',
  );
});

test('a second outage is said again from its start; a failure with no outage before is a beginning', () => {
  const { lines, logger } = capture();
  let clock = 0;
  const log = problemLog(logger, REGISTRY_PROBLEM, { now: () => clock });
  log.failed(refused);
  clock = 1_000;
  log.succeeded();
  clock = 2_000;
  log.failed(refused);
  clock = 2_000 + PROBLEM_REPEAT_MS - 1;
  log.failed(refused); // within the repeat time: nothing
  clock = 3_000 + PROBLEM_REPEAT_MS;
  log.succeeded();
  assert.equal(
    lines.map((line) => [line.msg, line.failures]),
    [
      [REGISTRY_PROBLEM.began, undefined],
      [REGISTRY_PROBLEM.ended, 1],
      [REGISTRY_PROBLEM.began, undefined],
      [REGISTRY_PROBLEM.ended, 2],
    ],
  );
});

test.run();
