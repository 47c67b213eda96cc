/**
 * `imgcache-server history` and `imgcache-server clients …` on a PostgreSQL history, run as a person runs them
 * (`--history postgres://…` or IMGCACHE_HISTORY), against a real PostgreSQL 15; and a running server on that
 * history that hears of a revocation within a second [P-66].
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { resolveConfig } from '../src/config.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { runCommand, SERVER_BIN } from './helpers/processes.ts';
import { startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

let postgres: PostgresInstance;
let url: string;

test.before(async () => {
  postgres = await startPostgres();
  url = await postgres.createDatabase('commands');
});

test.after(async () => {
  await postgres?.stop();
});

function server(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCommand(SERVER_BIN, args, env);
}

test('--history takes a file or a URL, IMGCACHE_HISTORY too; a flag of either name beats the environment, and --history beats --database', () => {
  assert.is(resolveConfig({ history: url }).database, url);
  assert.is(resolveConfig({}, { IMGCACHE_HISTORY: url }).database, url);
  assert.is(resolveConfig({ database: 'old.sqlite' }, { IMGCACHE_HISTORY: url }).database, 'old.sqlite');
  assert.is(resolveConfig({ history: url }, { IMGCACHE_DATABASE: 'old.sqlite' }).database, url);
  // both names of the same kind: the newer name wins
  assert.is(resolveConfig({ history: url, database: 'old.sqlite' }).database, url);
  assert.is(resolveConfig({}, { IMGCACHE_HISTORY: url, IMGCACHE_DATABASE: 'old.sqlite' }).database, url);
});

test('[P-60] clients add, list, set-tier, rotate and revoke on PostgreSQL; a running server closes a revoked session', async () => {
  const added = await server(['clients', 'add', 'alice', '--tier', 'gold', '--history', url]);
  assert.is(added.status, 0, added.stderr);
  const key = added.stdout.trim();
  assert.match(key, /^\S{20,}$/, 'the key is printed once, alone on stdout');
  const again = await server(['clients', 'add', 'alice', '--tier', 'gold', '--history', url]);
  assert.is(again.status, 1);
  assert.match(again.stderr, 'client-exists');

  const tier = await server(['clients', 'set-tier', 'alice', 'silver'], { IMGCACHE_HISTORY: url });
  assert.is(tier.status, 0, tier.stderr);
  const listed = await server(['clients', 'list', '--json', '--history', url]);
  assert.is(listed.status, 0, listed.stderr);
  const [row] = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
  assert.equal([row?.name, row?.tier, row?.used, row?.revoked, row?.sessionsOpen], ['alice', 'silver', 0, false, 0]);

  const running = await startTestServer({ database: url, access: 'keys' });
  try {
    const client = await ImgcacheClient.connect({ port: running.port, credential: key });
    assert.equal([client.welcome.session.identity, client.welcome.session.tier], ['alice', 'silver']);
    const open = await server(['clients', 'list', '--json', '--history', url]);
    assert.is((JSON.parse(open.stdout) as Array<{ sessionsOpen: number }>)[0]?.sessionsOpen, 1);
    // [P-60] [P-86] a client registered while the node runs is admitted at once, not after the node's next look
    const late = await server(['clients', 'add', 'bob', '--tier', 'gold', '--history', url]);
    const bob = await ImgcacheClient.connect({ port: running.port, credential: late.stdout.trim() });
    assert.is(bob.welcome.session.identity, 'bob');
    // [P-67] a keyed client reads its own sessions only: alice's open session is not in bob's document
    const own = (await bob.usage()) as { clients: Array<{ name: string; identity: string }>; rejected: unknown[] };
    assert.equal(
      [own.clients.map((entry) => [entry.name, entry.identity]), own.rejected],
      [[[bob.welcome.session.name, 'bob']], []],
    );
    await bob.exit();
    const closed = running.waitForEvent(
      (event) => event.type === 'session-closed' && `client-${event.session}` === client.welcome.session.name,
    );
    const revoked = await server(['clients', 'revoke', 'alice', '--history', url]);
    assert.is(revoked.status, 0, revoked.stderr);
    const close = await within(closed, 'the revoked session closed by the running server', 5_000);
    assert.is(close.type === 'session-closed' && close.data.reason, 'identity-revoked');
  } finally {
    await running.stop();
  }
  const refused = await server(['clients', 'rotate', 'alice', '--history', url]);
  assert.is(refused.status, 1);
  assert.match(refused.stderr, 'client-revoked');
});

test('[P-32] history prints the usage document of a PostgreSQL history', async () => {
  const printed = await server(['history', '--history', url]);
  assert.is(printed.status, 0, printed.stderr);
  const document = JSON.parse(printed.stdout) as { clients: Array<{ identity?: string; closeReason: string }> };
  assert.equal(
    document.clients.map((client) => [client.identity, client.closeReason]),
    [
      ['alice', 'identity-revoked'],
      ['bob', 'client-exit'],
    ],
  );
  assert.not.match(printed.stderr, /password/);
});

test('a PostgreSQL history out of reach: the server, history and clients refuse with history-unavailable, no password shown', async () => {
  const unreachable = 'postgres://imgcache:s3cret-word@127.0.0.1:1/imgcache';
  for (const args of [['--port', '0'], ['history'], ['clients', 'list']]) {
    const result = await server([...args, '--history', unreachable]);
    assert.is(result.status, 1, `${args[0]}: ${result.stderr}`);
    assert.match(result.stderr, '[history-unavailable]');
    assert.match(result.stderr, 'postgres://imgcache:***@127.0.0.1:1/imgcache');
    assert.not.match(result.stderr + result.stdout, 's3cret-word', 'the password is never shown');
  }
});

test.run();
