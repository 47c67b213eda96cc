/**
 * The operator's log of a history outage (src/server/history-outage-log.ts): said once, repeated at a bounded rate
 * with the count of failures since the last line, and said when it is over. A full disk once gave 1,236 lines of
 * 2 KB in 16 s, one per failed commit, and nothing when it was over.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HistoryAppendError } from '../db/errors.ts';
import {
  historyOutageLog,
  OUTAGE_BEGAN,
  OUTAGE_ENDED,
  OUTAGE_GOES_ON,
  OUTAGE_REPEAT_MS,
} from '../src/server/history-outage-log.ts';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { lines, logger: pino({ level: 'info', base: undefined }, sink) };
}

const diskFull = new HistoryAppendError(
  1,
  Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }),
);

test('1,236 failed commits in 16 s: one line when it begins, one repeat after 10 s with the count, one when it ends', () => {
  const { lines, logger } = capture();
  let clock = 0;
  const report = historyOutageLog(logger, { now: () => clock });
  const failures = 1_236;
  for (let failure = 1; failure <= failures; failure++) {
    clock = ((failure - 1) * 16_000) / failures;
    report({ kind: 'failed', error: diskFull, failures: failure, since: 0, heldFacts: 3, lostFacts: 0 });
  }
  clock = 16_000;
  report({ kind: 'recovered', outageMs: 16_000, failures, lateFacts: 3, lostFacts: 0 });
  assert.equal(
    lines.map((line) => line.msg),
    [OUTAGE_BEGAN, OUTAGE_GOES_ON, OUTAGE_ENDED],
  );
  const [began, goesOn, ended] = lines;
  assert.is((began?.err as { code?: string } | undefined)?.code, 'history-append-failed');
  assert.is((began?.err as { condition?: string } | undefined)?.condition, 'disk-full');
  assert.is(goesOn?.condition, 'disk-full');
  assert.is(goesOn?.sqliteCode, 'SQLITE_FULL');
  assert.not.ok('err' in (goesOn ?? {}), 'a repeat is a short line: no stack');
  const repeatAt = Math.ceil((OUTAGE_REPEAT_MS * failures) / 16_000);
  assert.is(goesOn?.failures, repeatAt, 'the failures since the first line');
  assert.equal([ended?.outageMs, ended?.failures, ended?.lateFacts, ended?.lostFacts], [16_000, failures, 3, 0]);
});

test('an outage after a recovery is said again', () => {
  const { lines, logger } = capture();
  const report = historyOutageLog(logger, { now: () => 0 });
  const failed = { kind: 'failed', error: diskFull, failures: 1, since: 0, heldFacts: 0, lostFacts: 0 } as const;
  report(failed);
  report({ kind: 'recovered', outageMs: 5, failures: 1, lateFacts: 0, lostFacts: 0 });
  report(failed);
  assert.equal(
    lines.map((line) => line.msg),
    [OUTAGE_BEGAN, OUTAGE_ENDED, OUTAGE_BEGAN],
  );
});

test.run();
