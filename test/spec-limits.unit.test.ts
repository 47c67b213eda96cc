/**
 * What the server sends stays within what the spec promises a client: the first frame within 64 KiB ([P-3]) and
 * every integer in plain digits ([P-50]), whatever tier table the operator gives it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_TIER_NAME_CHARS, validateTierTable } from '../machines/tiers.ts';

const row = (extra: Record<string, unknown>) => [{ from: 100, to: 999, tier: 'all', quota: 3, ...extra }];

test('[P-3] a tier name longer than 64 characters is refused, so the WELCOME stays far below 64 KiB', () => {
  assert.is(validateTierTable(row({ tier: 't'.repeat(MAX_TIER_NAME_CHARS) }))[0]?.tier.length, 64);
  assert.throws(() => validateTierTable(row({ tier: 't'.repeat(70_000) })), /at most 64 characters/);
});

test('[P-50] a quota above 2^53-1 is refused: it could not be written in plain digits', () => {
  assert.is(validateTierTable(row({ quota: Number.MAX_SAFE_INTEGER }))[0]?.quota, Number.MAX_SAFE_INTEGER);
  assert.throws(() => validateTierTable(row({ quota: 1e300 })), /quota must be/);
});

test.run();
