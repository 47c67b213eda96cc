/**
 * [P-60] [P-61] `imgcache-server clients`, run as the operator runs it: a key printed once and stored only as a hash,
 * every change an event of the history, the registry rebuilt from them, errors said as such.
 */
import { readFileSync, rmSync } from 'node:fs';
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
  assert.match(tier.stderr, /no tier 'diamond'/);
  const name = await clients('add', 'client-3', '--tier', 'gold');
  assert.is(name.status, 2);
  assert.match(name.stderr, /names of sessions/);
  const unknown = await clients('revoke', 'dave');
  assert.is(unknown.status, 1);
  assert.match(unknown.stderr, /\[client-unknown\]/);
  const revoked = await clients('rotate', 'alice');
  assert.is(revoked.status, 1);
  assert.match(revoked.stderr, /\[client-revoked\]/);
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
