/**
 * [P-60] [P-61] `imgcache-server clients`, run as the operator runs it: a key printed once and stored only as a hash,
 * every change an event of the history, the registry rebuilt from them, errors said as such.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openDatabase } from '../db/open-database.ts';
import { REGISTRY_EVENTS, readRegistryEvents } from '../db/registry-store.ts';
import { runCommand, SERVER_BIN } from './helpers/processes.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

const folder = makeTemporaryFolder();
const database = path.join(folder, 'history.sqlite');
const clients = (...args: string[]) => runCommand(SERVER_BIN, ['clients', ...args, '--database', database]);

test.after(() => rmSync(folder, { recursive: true, force: true }));

test('[P-60] add prints the key once on stdout; list, set-tier, rotate, revoke are events; no secret stored', async () => {
  const added = await clients('add', 'alice', '--tier', 'gold');
  assert.is(added.status, 0, added.stderr);
  const key = added.stdout.trim();
  assert.match(key, /^imgc_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/, 'stdout holds the key alone');
  assert.match(added.stderr, /shown this once/);

  const listed = await clients('list', '--json');
  assert.is(listed.status, 0, listed.stderr);
  const [row] = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
  assert.equal(
    [row?.name, row?.tier, row?.used, row?.limit, row?.period, row?.sessionsOpen, row?.lastSeen, row?.revoked],
    ['alice', 'gold', 0, 10, 'day', 0, null, false],
  );
  assert.match(String(row?.resetsAt), /T00:00:00\.000Z$/);
  const table = await clients('list');
  assert.match(table.stdout, /^name\s+tier\s+used\s+period\s+resets at\s+open\s+last seen\s+revoked/);
  assert.match(table.stdout, /alice\s+gold\s+0\/10\s+day/);

  assert.is((await clients('set-tier', 'alice', 'platinum')).status, 0);
  const rotated = await clients('rotate', 'alice');
  assert.is(rotated.status, 0, rotated.stderr);
  const newKey = rotated.stdout.trim();
  assert.match(newKey, /^imgc_/);
  assert.is.not(newKey, key);
  assert.is((await clients('revoke', 'alice')).status, 0);

  const db = openDatabase(database, { readonly: true });
  const events = readRegistryEvents(db);
  db.close();
  assert.equal(
    events.map((event) => event.type),
    ['client-registered', 'client-tier-changed', 'client-key-rotated', 'client-revoked'],
  );
  const after = JSON.parse((await clients('list', '--json')).stdout) as Array<Record<string, unknown>>;
  assert.equal([after[0]?.tier, after[0]?.revoked], ['platinum', true]);

  // The secrets are nowhere in the history's files; their hashes are.
  for (const file of [database, `${database}-wal`]) {
    let bytes: string;
    try {
      bytes = readFileSync(file).toString('latin1');
    } catch {
      continue;
    }
    for (const secret of [key, newKey]) {
      assert.not.ok(bytes.includes(secret.slice(22)), `${path.basename(file)} holds no secret`);
    }
  }
});

test('[P-60] refusals: a name taken, an unknown tier, a bad name, an unknown or revoked client', async () => {
  assert.is((await clients('add', 'bob', '--tier', 'bronze')).status, 0);
  const taken = await clients('add', 'bob', '--tier', 'gold');
  assert.is(taken.status, 1);
  assert.match(taken.stderr, /already registered \[client-exists\]/);
  assert.is(taken.stdout, '', 'no key printed');
  const tier = await clients('add', 'carol', '--tier', 'diamond');
  assert.is(tier.status, 2);
  assert.match(tier.stderr, /no tier "diamond"/);
  const name = await clients('add', 'client-3', '--tier', 'gold');
  assert.is(name.status, 2);
  assert.match(name.stderr, /names of sessions/);
  const unknown = await clients('revoke', 'dave');
  assert.is(unknown.status, 1);
  assert.match(unknown.stderr, /\[client-unknown\]/);
  const revoked = await clients('rotate', 'alice');
  assert.is(revoked.status, 1);
  assert.match(revoked.stderr, /is revoked, for good: register the client under a new name .*\[client-revoked\]/);
  const again = await clients('add', 'alice', '--tier', 'gold');
  assert.is(again.status, 1);
  assert.match(
    again.stderr,
    /was registered and revoked; a name is never registered again: register the client under a new name \[client-exists\]/,
  );
  assert.is(again.stdout, '', 'no key printed');
});

test('only add creates a history: list, set-tier, rotate, revoke on a path that does not exist refuse it, create nothing', async () => {
  const typo = path.join(folder, 'typo.sqlite');
  for (const args of [
    ['list'],
    ['list', '--json'],
    ['set-tier', 'alice', 'gold'],
    ['rotate', 'alice'],
    ['revoke', 'alice'],
  ]) {
    const result = await runCommand(SERVER_BIN, ['clients', ...args, '--history', typo]);
    assert.is(result.status, 1, args.join(' '));
    assert.is(result.stdout, '', args.join(' '));
    assert.equal(
      result.stderr,
      `imgcache-server: clients ${args[0]}: no history at ${JSON.stringify(typo)} (check --history; only clients add ` +
        'creates one) [history-not-found]\n',
    );
    assert.equal(
      readdirSync(folder).filter((file) => file.startsWith('typo')),
      [],
      'no file left behind',
    );
  }
  const added = await runCommand(SERVER_BIN, ['clients', 'add', 'erin', '--tier', 'gold', '--history', typo]);
  assert.is(added.status, 0, added.stderr);
  assert.ok(existsSync(typo), 'add registers clients before the first start: it creates the history');
  const listed = await runCommand(SERVER_BIN, ['clients', 'list', '--history', typo]);
  assert.match(listed.stdout, /^erin\s+gold\s/m);
});

test('list counts by the tier table given (--tiers, IMGCACHE_TIERS); without one it says its figures are from the built-in table', async () => {
  const history = path.join(folder, 'tiers.sqlite');
  const tiers = path.join(folder, 'tiers.json');
  writeFileSync(tiers, JSON.stringify([{ from: 100, to: 999, tier: 'gold', quota: 2, period: 'minute' }]));
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCommand(SERVER_BIN, ['clients', ...args, '--history', history], env);
  assert.is((await run(['add', 'grace', '--tier', 'gold', '--tiers', tiers])).status, 0);

  for (const [args, env] of [
    [['list', '--tiers', tiers], {}],
    [['list'], { IMGCACHE_TIERS: tiers }],
  ] as const) {
    const given = await run([...args], env);
    assert.is(given.status, 0, given.stderr);
    assert.match(given.stdout, /^grace\s+gold\s+0\/2\s+minute\s/m);
    assert.is(given.stderr, '', 'figures from the table given: nothing to warn of');
  }
  const builtIn = await run(['list', '--json']);
  assert.is(builtIn.status, 0, builtIn.stderr);
  const [row] = JSON.parse(builtIn.stdout) as Array<{ limit: number; period: string }>;
  assert.equal([row?.limit, row?.period], [10, 'day']);
  assert.match(
    builtIn.stderr,
    /^limits and periods as the built-in tier table gives them; a server started with --tiers F/,
  );
  assert.match(builtIn.stderr, /give the same --tiers F here/);

  const custom = await run(['add', 'heidi', '--tier', 'diamond']);
  assert.is(custom.status, 2);
  assert.match(
    custom.stderr,
    /no tier "diamond" in the built-in tier table \(a server started with --tiers F: give the same/,
  );
});

/** Any control character but the newline that ends the message, and the bidirectional overrides. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this looks for
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

test('a name, tier or path in an error is quoted, its control characters escaped: none reaches the terminal raw', async () => {
  const hostile = 'x\x1b]0;pwned\x07y';
  const cases = [
    { args: ['add', hostile, '--tier', 'gold'], shown: '"x\\u001b]0;pwned\\u0007y" cannot be a client name' },
    { args: ['add', 'frank', '--tier', hostile], shown: 'no tier "x\\u001b]0;pwned\\u0007y"' },
    { args: ['set-tier', 'bob', `gold\u009b2J`], shown: 'no tier "gold\\u009b2J"' },
    { args: ['rotate', `a\u202eb`], shown: '"a\\u202eb" cannot be a client name' },
    { args: ['revoke', 'dave'], shown: 'no client named "dave" is registered' },
    { args: ['rotate', 'alice'], shown: '"alice" is revoked' },
    { args: ['add', 'bob', '--tier', 'gold'], shown: 'a client named "bob" is already registered' },
  ];
  for (const { args, shown } of cases) {
    const result = await clients(...args);
    assert.ok(result.status === 1 || result.status === 2, `${JSON.stringify(args)}: ${result.status}`);
    assert.ok(result.stderr.includes(shown), `${JSON.stringify(args)}: ${JSON.stringify(result.stderr)}`);
    assert.not.match(result.stderr, RAW_CONTROL, 'no control character');
  }
  const missing = path.join(folder, 'a\x1b[2Jb.sqlite');
  const result = await runCommand(SERVER_BIN, ['clients', 'list', '--history', missing]);
  assert.ok(result.stderr.includes('a\\u001b[2Jb.sqlite'), result.stderr);
});

test('[P-60] a look for new registry events is one probe of its partial index', () => {
  const db = openDatabase(database, { readonly: true });
  const plan = db
    .prepare(
      `EXPLAIN QUERY PLAN SELECT * FROM event_rows INDEXED BY events_registry
       WHERE ${REGISTRY_EVENTS} AND position > 3 ORDER BY position`,
    )
    .all() as Array<{ detail: string }>;
  db.close();
  assert.match(
    plan.map((row) => row.detail).join('; '),
    /SEARCH event_rows USING INDEX events_registry \(position>\?\)/,
  );
});

test.run();
