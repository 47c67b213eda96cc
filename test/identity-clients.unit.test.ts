/**
 * What a keyed client shows of its identity [P-68] and of its quota's period [P-64]: the dashboard's header and the
 * CLI's lines, and where the CLI finds the key (a file or the environment, never the command line).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KeySourceError, readClientKey } from '../client/client-key.ts';
import { headerLines } from '../client/dashboard/panels/header-panel.ts';
import { initialViewState, update } from '../client/dashboard/view-state.ts';
import { periodOf, whoYouAre } from '../client/format.ts';

const KEYED = {
  name: 'client-12',
  code: 912,
  tier: 'platinum',
  canReadUsage: true,
  identity: 'alice',
  usageScope: 'all' as const,
};
const DAILY = { limit: 100, used: 7, remaining: 93, period: 'day', resetsAt: '2026-11-29T00:00:00.000Z' };

test('[P-64] [P-68] the dashboard header shows the identity, the quota left and when it resets', () => {
  const { state } = update(
    initialViewState('127.0.0.1:7878', 'client-cache'),
    { type: 'connected', server: 'imgcache/0.1.0', session: KEYED, quota: DAILY },
    Date.parse('2026-11-28T21:00:00.000Z'),
  );
  const [first, second] = headerLines(state, 120);
  assert.match(first, 'as alice');
  assert.match(first, 'platinum');
  assert.match(second, '93 of 100 left');
  assert.match(second, 'per day, resets 2026-11-29 00:00 UTC');
  const anonymous = update(
    initialViewState('127.0.0.1:7878', 'client-cache'),
    {
      type: 'connected',
      server: 'imgcache/0.1.0',
      session: { name: 'client-3', code: 108, tier: 'bronze', canReadUsage: false },
      quota: { limit: 3, used: 0, remaining: 3 },
    },
    0,
  ).state;
  const [line1, line2] = headerLines(anonymous, 120);
  assert.not.match(line1, ' as ');
  assert.not.match(line2, 'resets');
});

test('[P-64] [P-68] the CLI says who you are and when the quota resets', () => {
  assert.is(whoYouAre(KEYED), 'you are alice (session client-12), code 912, tier platinum');
  assert.is(whoYouAre({ ...KEYED, identity: undefined }), 'you are client-12, code 912, tier platinum');
  assert.is(periodOf(DAILY), ' this day (resets 2026-11-29T00:00:00.000Z)');
  assert.is(periodOf({ limit: 3, used: 0, remaining: 3 }), '');
});

test('[P-60] the key comes from --key-file, IMGCACHE_KEY_FILE or IMGCACHE_KEY; a missing or empty file is said', () => {
  const folder = mkdtempSync(path.join(tmpdir(), 'imgcache-key-'));
  const fromFile = `imgc_0123456789abcdef_${'F'.repeat(43)}`;
  const fromEnv = `imgc_fedcba9876543210_${'E'.repeat(43)}`;
  try {
    const file = path.join(folder, 'alice.key');
    writeFileSync(file, `${fromFile}\n`);
    assert.is(readClientKey(file, { IMGCACHE_KEY: fromEnv }), fromFile, 'the file wins');
    assert.is(readClientKey(undefined, { IMGCACHE_KEY_FILE: file }), fromFile);
    assert.is(readClientKey(undefined, { IMGCACHE_KEY: ` ${fromEnv} ` }), fromEnv);
    assert.is(readClientKey(undefined, {}), undefined, 'no key: anonymous');
    assert.throws(
      () => readClientKey(path.join(folder, 'missing'), {}),
      (error: Error) => {
        return error instanceof KeySourceError && /cannot read the key file .*ENOENT/.test(error.message);
      },
    );
    writeFileSync(file, '\n');
    assert.throws(() => readClientKey(file, {}), /is empty/);
    // [P-61] A file that is not a key is not sent, nor repeated.
    for (const text of [`${fromFile} and more`, `${fromFile}\nsecond line`, 'root:$6$salt$hash:19000:0:99999:7:::']) {
      writeFileSync(file, text);
      assert.throws(
        () => readClientKey(file, {}),
        (error: Error) => /does not hold an imgcache key/.test(error.message) && !error.message.includes(text.trim()),
      );
    }
    assert.throws(() => readClientKey(undefined, { IMGCACHE_KEY: 'hunter2' }), /IMGCACHE_KEY does not hold/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
