import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, DEFAULT_CONFIG, describeOptions, OPTION_SPECS, resolveConfig } from '../src/config.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

test('defaults: 127.0.0.1:7878, capacity 3, the default tier table', () => {
  const config = resolveConfig();
  assert.is(config.host, '127.0.0.1');
  assert.is(config.port, 7878);
  assert.is(config.capacity, 3);
  assert.equal(
    config.tiers.map((tier) => [tier.from, tier.to, tier.tier, tier.quota, tier.canReadUsage]),
    [
      [100, 399, 'bronze', 3, false],
      [400, 699, 'silver', 5, false],
      [700, 899, 'gold', 10, false],
      [900, 999, 'platinum', 20, true],
    ],
  );
  assert.ok(Object.isFrozen(config));
});

test('a flag wins over the environment, which wins over the default', () => {
  assert.is(resolveConfig({}, { IMGCACHE_CAPACITY: '9' }).capacity, 9);
  assert.is(resolveConfig({ capacity: '4' }, { IMGCACHE_CAPACITY: '9' }).capacity, 4);
  assert.equal(resolveConfig({}, { IMGCACHE_CODES: '108, 950' }).codes, [108, 950]);
});

test('bad values are refused with a message naming the flag and the variable', () => {
  for (const [flags, pattern] of [
    [{ capacity: '0' }, /--capacity \(IMGCACHE_CAPACITY\) must be an integer >= 1/],
    [{ port: 'http' }, /--port/],
    [{ codes: '99' }, /codes from 100 to 999/],
    [{ 'log-format': 'xml' }, /pretty or json/],
    [{ 'max-request-bytes': '2000000' }, /cannot exceed --max-frame-bytes/],
  ] as const) {
    assert.throws(
      () => resolveConfig(flags),
      (error: Error) => error instanceof ConfigError && pattern.test(error.message),
    );
  }
});

test('a tier table is read from a JSON file and checked', () => {
  const folder = makeTemporaryFolder();
  const good = path.join(folder, 'tiers.json');
  writeFileSync(
    good,
    JSON.stringify([
      { from: 100, to: 899, tier: 'standard', quota: 2 },
      { from: 900, to: 999, tier: 'admin', quota: 50, canReadUsage: true },
    ]),
  );
  assert.equal(
    resolveConfig({ tiers: good }).tiers.map((tier) => tier.tier),
    ['standard', 'admin'],
  );
  const gap = path.join(folder, 'gap.json');
  writeFileSync(gap, JSON.stringify([{ from: 100, to: 500, tier: 'a', quota: 1 }]));
  assert.throws(() => resolveConfig({ tiers: gap }), /bad tier table/);
  assert.throws(() => resolveConfig({ tiers: path.join(folder, 'missing.json') }), /cannot read the tier table/);
});

test('--help describes every option, with its default and its environment variable', () => {
  const help = describeOptions();
  for (const spec of OPTION_SPECS) {
    assert.ok(help.includes(`--${spec.flag}`), spec.flag);
    assert.ok(help.includes(spec.env), spec.env);
  }
  assert.ok(help.includes(String(DEFAULT_CONFIG.idleTimeoutMs)));
});

test.run();
