/**
 * The pure parts of identities [P-60]-[P-65]: the key's form and its hash, the registry as a projection of events,
 * quota windows, the usage projection behind a quota that survives restarts, the ledger, and the throttle of failed
 * keys. No SQLite, no sockets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clientByKeyId, clientNameProblem, emptyRegistry, projectRegistry } from '../db/client-registry.ts';
import type { StoredEvent } from '../db/events.ts';
import { projectIdentityUsage } from '../db/identity-usage.ts';
import { periodWindow, validateTierTable } from '../machines/tiers.ts';
import { resolveConfig } from '../src/config.ts';
import { hashSecret, newClientKey, parseClientKey, secretMatches } from '../src/identity/client-key.ts';
import { CredentialThrottle } from '../src/identity/credential-throttle.ts';
import { QuotaLedger } from '../src/identity/quota-ledger.ts';

test('[P-61] a new key: imgc_ prefix, key id, 256-bit secret; only its hash is stored, compared in constant time', () => {
  const first = newClientKey();
  const second = newClientKey();
  assert.match(first.key, /^imgc_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.is.not(first.key, second.key);
  const parsed = parseClientKey(first.key);
  assert.ok(parsed);
  assert.is(parsed?.keyId, first.keyId);
  assert.is(hashSecret(parsed?.secret ?? ''), first.keyHash);
  assert.not.match(first.keyHash, parsed?.secret ?? '');
  assert.ok(secretMatches(parsed?.secret ?? '', first.keyHash));
  assert.not.ok(secretMatches(parseClientKey(second.key)?.secret ?? '', first.keyHash));
  assert.not.ok(secretMatches(parsed?.secret ?? '', undefined), 'an unknown key id matches nothing');
  for (const bad of [
    null,
    42,
    '',
    'imgc_',
    `${first.key}x`,
    first.key.replace('imgc_', 'ghp_'),
    first.key.toUpperCase(),
  ]) {
    assert.is(parseClientKey(bad), null, String(bad));
  }
});

let position = 0;
function event(type: string, data: object, at = 1_000): StoredEvent {
  position += 1;
  return { type, data, position, at, session: null } as StoredEvent;
}

test('[P-60] the registry is a projection of its events: registered, rotated, tier changed, revoked', () => {
  const alice = newClientKey();
  const rotated = newClientKey();
  const events = [
    event('client-registered', { name: 'alice', tier: 'gold', keyId: alice.keyId, keyHash: alice.keyHash }, 1_000),
    event('session-admitted', { name: 'client-1' }),
    event('client-tier-changed', { name: 'alice', tier: 'platinum', previousTier: 'gold' }, 2_000),
    event('client-key-rotated', { name: 'alice', keyId: rotated.keyId, keyHash: rotated.keyHash }, 3_000),
  ];
  const registry = projectRegistry(events);
  const client = registry.clients.get('alice');
  assert.equal(
    [client?.tier, client?.keyId, client?.revoked, client?.registeredAt, client?.changedAt],
    ['platinum', rotated.keyId, false, 1_000, 3_000],
  );
  assert.is(clientByKeyId(registry, alice.keyId), undefined, 'the rotated-away key is unknown');
  assert.is(clientByKeyId(registry, rotated.keyId)?.name, 'alice');
  assert.is(registry.position, events[3]?.position);
  // Later events, applied on top (what a running server's poll does), and the same events again change nothing more.
  projectRegistry([event('client-revoked', { name: 'alice' }, 4_000)], registry);
  assert.ok(registry.clients.get('alice')?.revoked);
  assert.is(clientByKeyId(registry, rotated.keyId)?.name, 'alice', 'a revoked key is still recognised as revoked');
  projectRegistry(
    [event('client-tier-changed', { name: 'alice', tier: 'bronze', previousTier: 'platinum' })],
    registry,
  );
  assert.is(registry.clients.get('alice')?.tier, 'platinum', 'a revoked client changes no more');
  const again = projectRegistry(
    [event('client-registered', { name: 'alice', tier: 'bronze', keyId: 'x', keyHash: 'y' })],
    registry,
  );
  assert.is(again.clients.get('alice')?.keyId, rotated.keyId, 'a name is registered once');
  assert.is(emptyRegistry().clients.size, 0);
});

test('[P-60] client names: plain, and never a session name', () => {
  for (const good of ['alice', 'build-bot.2', 'a', 'x'.repeat(64)]) assert.is(clientNameProblem(good), null, good);
  for (const bad of ['', 'Alice', '-x', 'a b', 'x'.repeat(65), 'client-7', 'ä']) {
    assert.ok(clientNameProblem(bad), bad);
  }
});

test('[P-64] fixed windows of the UTC clock: minute, hour, day, week from Monday; none for session', () => {
  const at = Date.parse('2026-11-28T21:17:45.123Z'); // a Saturday
  const window = (period: 'minute' | 'hour' | 'day' | 'week') => {
    const found = periodWindow(period, at);
    return [new Date(found?.start ?? 0).toISOString(), new Date(found?.end ?? 0).toISOString()];
  };
  assert.equal(window('minute'), ['2026-11-28T21:17:00.000Z', '2026-11-28T21:18:00.000Z']);
  assert.equal(window('hour'), ['2026-11-28T21:00:00.000Z', '2026-11-28T22:00:00.000Z']);
  assert.equal(window('day'), ['2026-11-28T00:00:00.000Z', '2026-11-29T00:00:00.000Z']);
  assert.equal(window('week'), ['2026-11-23T00:00:00.000Z', '2026-11-30T00:00:00.000Z']);
  assert.is(periodWindow('session', at), null);
  const table = validateTierTable([{ from: 100, to: 999, tier: 't', quota: 100, period: 'hour' }]);
  assert.is(table[0]?.period, 'hour');
  assert.throws(() => validateTierTable([{ from: 100, to: 999, tier: 't', quota: 1, period: 'fortnight' }]), /period/);
});

test('[P-64] identity usage: images served in the window, over every session, less transfers cut short', () => {
  const used = projectIdentityUsage({
    admissions: [
      { session: 1, identity: 'alice' },
      { session: 2, identity: 'alice' },
      { session: 3, identity: 'bob' },
    ],
    events: [
      { session: 1, at: 50, type: 'image-served' }, // before alice's window
      { session: 1, at: 60, type: 'transfer-incomplete' }, // takes back nothing counted
      { session: 1, at: 100, type: 'image-served' },
      { session: 2, at: 150, type: 'image-served' },
      { session: 2, at: 160, type: 'image-served' },
      { session: 2, at: 170, type: 'transfer-incomplete' },
      { session: 3, at: 200, type: 'image-served' }, // bob's quota has no period
      { session: 4, at: 200, type: 'image-served' }, // anonymous
    ],
    windowStartOf: (identity) => (identity === 'alice' ? 100 : null),
  });
  assert.equal([...used], [['alice', 2]]);
});

test('[P-64] the ledger: counts in the current window, a past window counts zero, a late take-back is ignored', () => {
  const ledger = new QuotaLedger();
  ledger.set('alice', 1_000, 2);
  assert.is(ledger.used('alice', 1_000), 2);
  ledger.add('alice', 1_000, 1);
  assert.is(ledger.used('alice', 1_000), 3);
  assert.is(ledger.used('alice', 2_000), 0, 'the next window starts afresh');
  ledger.add('alice', 2_000, 1);
  ledger.add('alice', 1_000, -1); // a transfer of the earlier window, cut short now
  assert.is(ledger.used('alice', 2_000), 1);
  ledger.add('alice', 2_000, -1);
  ledger.add('alice', 2_000, -1);
  assert.is(ledger.used('alice', 2_000), 0, 'never below zero');
  assert.is(ledger.used('bob', 2_000), 0);
});

test('[P-63] failed keys: free failures, then blocks that double up to a bound; a success forgets', () => {
  const throttle = new CredentialThrottle({ freeFailures: 3, baseDelayMs: 1_000, maxDelayMs: 4_000 });
  assert.equal(
    [1, 2, 3].map(() => throttle.failed('10.0.0.1', 0)),
    [0, 0, 0],
  );
  assert.is(throttle.retryAfterMs('10.0.0.1', 0), 0);
  assert.is(throttle.failed('10.0.0.1', 0), 1_000);
  assert.is(throttle.retryAfterMs('10.0.0.1', 400), 600);
  assert.is(throttle.retryAfterMs('10.0.0.2', 400), 0, 'per address');
  assert.is(throttle.failed('10.0.0.1', 1_000), 2_000);
  assert.is(throttle.failed('10.0.0.1', 3_000), 4_000);
  assert.is(throttle.failed('10.0.0.1', 7_000), 4_000, 'bounded');
  throttle.succeeded('10.0.0.1');
  assert.is(throttle.retryAfterMs('10.0.0.1', 7_000), 0);
  const small = new CredentialThrottle({ maxAddresses: 2 });
  for (const address of ['a', 'b', 'c']) small.failed(address, 0);
  assert.is(small.size, 2, 'bounded memory');
});

test('[P-60] [P-65] options: access open by default, one session per identity, an anonymous tier of the table', () => {
  const defaults = resolveConfig();
  assert.equal([defaults.access, defaults.anonymousTier, defaults.maxSessionsPerIdentity], ['open', '', 1]);
  const mixed = resolveConfig({ access: 'mixed', 'anonymous-tier': 'silver', 'max-sessions-per-identity': '3' });
  assert.equal([mixed.access, mixed.anonymousTier, mixed.maxSessionsPerIdentity], ['mixed', 'silver', 3]);
  assert.is(resolveConfig({}, { IMGCACHE_ACCESS: 'keys' }).access, 'keys');
  assert.throws(() => resolveConfig({ access: 'closed' }), /takes open, keys or mixed/);
  assert.throws(() => resolveConfig({ 'anonymous-tier': 'diamond' }), /no tier 'diamond'/);
  assert.throws(() => resolveConfig({ 'max-sessions-per-identity': '0' }), /must be an integer >= 1/);
});

test.run();
