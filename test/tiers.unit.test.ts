import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_TIER_TABLE, tierForCode, validateTierTable } from '../machines/tiers.ts';

test('[P-20] the default table: bronze 3, silver 5, gold 10, platinum 20 with usage', () => {
  const cases = [
    [100, 'bronze', 3, false],
    [399, 'bronze', 3, false],
    [400, 'silver', 5, false],
    [699, 'silver', 5, false],
    [700, 'gold', 10, false],
    [899, 'gold', 10, false],
    [900, 'platinum', 20, true],
    [999, 'platinum', 20, true],
  ] as const;
  for (const [code, tier, quota, canReadUsage] of cases) {
    const range = tierForCode(code, DEFAULT_TIER_TABLE);
    assert.equal([range.tier, range.quota, range.canReadUsage], [tier, quota, canReadUsage], `code ${code}`);
  }
});

test('[P-12] tierForCode throws outside 100..999', () => {
  assert.throws(() => tierForCode(99, DEFAULT_TIER_TABLE), /no tier for session code 99/);
  assert.throws(() => tierForCode(1000, DEFAULT_TIER_TABLE), /no tier/);
});

test('validateTierTable accepts the default table as JSON and sorts the rows', () => {
  const reversed = JSON.parse(JSON.stringify([...DEFAULT_TIER_TABLE].reverse()));
  assert.equal(validateTierTable(reversed), DEFAULT_TIER_TABLE);
  assert.ok(Object.isFrozen(validateTierTable(reversed)));
});

test('validateTierTable defaults canReadUsage to false and allows a quota of 0', () => {
  const table = validateTierTable([{ from: 100, to: 999, tier: 'guest', quota: 0 }]);
  assert.equal(table, [{ from: 100, to: 999, tier: 'guest', quota: 0, canReadUsage: false }]);
});

test('validateTierTable rejects bad tables with a clear message', () => {
  const row = (from: number, to: number, extra: object = {}) => ({ from, to, tier: 't', quota: 1, ...extra });
  const cases: Array<[unknown, RegExp]> = [
    [{}, /non-empty array/],
    [[], /non-empty array/],
    [[42], /entry 0 is not an object/],
    [[row(100, 999, { quota: -1 })], /quota must be a non-negative integer/],
    [[row(100, 999, { quota: 1.5 })], /quota must be a non-negative integer/],
    [[row(100, 999, { tier: '' })], /tier must be a non-empty string/],
    [[row(100, 999, { canReadUsage: 'yes' })], /canReadUsage must be a boolean/],
    [[row(99, 999)], /from and to must be integers from 100 to 999/],
    [[row(100, 1000)], /from and to must be integers/],
    [[row(500, 400)], /from \(500\) is greater than to \(400\)/],
    [[row(100, 500), row(500, 999)], /overlaps/],
    [[row(100, 499), row(501, 999)], /codes 500-500 have no tier/],
    [[row(101, 999)], /codes 100-100 have no tier/],
    [[row(100, 900)], /codes 901-999 have no tier/],
  ];
  for (const [table, message] of cases) {
    assert.throws(() => validateTierTable(table), message, JSON.stringify(table));
  }
});

test.run();
