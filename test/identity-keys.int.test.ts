/**
 * Identities over real sockets [P-60]-[P-68]: keys in the HELLO, typed REJECTs, the throttle of guessers, quotas per
 * identity over a period (across reconnects, restarts, and a period's turn on an injected clock), the session bound
 * per identity, revocation reaching open sessions, the mixed mode, usage of one's own sessions, and no secret in any
 * log line or history file.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import type { NewEvent } from '../db/events.ts';
import { runClientsCommand } from '../src/clients-command.ts';
import { resolveConfig, type ServerConfig } from '../src/config.ts';
import { RejectedError, ServerError } from '../src/errors.ts';
import { MessageType, parseJsonBody, type Quota } from '../src/protocol/index.ts';
import { sequenceOfCodes } from '../src/server/code-source.ts';
import { type ImgcacheServer, startServer } from '../src/server/server.ts';
import { CLIENT_BIN, runCommand, SERVER_BIN } from './helpers/processes.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { eventually, makeTemporaryFolder, recordedEvents, SAMPLE_IMAGES } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** bronze: 2 images a day; gold: 1 an hour; platinum: 5 a day with everyone's usage */
const TIERS = [
  { from: 100, to: 399, tier: 'bronze', quota: 2, period: 'day' },
  { from: 400, to: 699, tier: 'silver', quota: 4 },
  { from: 700, to: 899, tier: 'gold', quota: 1, period: 'hour' },
  { from: 900, to: 999, tier: 'platinum', quota: 5, canReadUsage: true },
];

interface Running {
  server: ImgcacheServer;
  port: number;
  events: NewEvent[];
  log: string[];
  waitFor(matches: (event: NewEvent) => boolean): Promise<NewEvent>;
  stop(): Promise<void>;
}

function setUp(): { folder: string; database: string; tiersFile: string } {
  const folder = makeTemporaryFolder('imgcache-keys-');
  const tiersFile = path.join(folder, 'tiers.json');
  writeFileSync(tiersFile, JSON.stringify(TIERS));
  return { folder, database: path.join(folder, 'history.sqlite'), tiersFile };
}

/** `imgcache-server clients …` in-process (its own connection, as the command has): returns what it printed. */
function clients(database: string, tiersFile: string, args: string[], tier?: string): string {
  const config = resolveConfig({ database, tiers: tiersFile });
  let out = '';
  const json = args.includes('--json');
  const words = args.filter((arg) => arg !== '--json');
  runClientsCommand(words, { ...(tier === undefined ? {} : { tier }), json }, config, {
    out: (text) => {
      out += text;
    },
    err: () => {},
  });
  return out.trim();
}

async function start(
  database: string,
  tiersFile: string,
  options: Partial<ServerConfig> = {},
  now?: () => number,
): Promise<Running> {
  const { events, onRecorded, waitForEvent } = recordedEvents();
  const log: string[] = [];
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _encoding, done) {
        log.push(String(chunk));
        done();
      },
    }),
  );
  const server = await startServer(
    {
      host: '127.0.0.1',
      port: 0,
      cacheDir: SAMPLE_IMAGES,
      database,
      tiers: resolveConfig({ tiers: tiersFile }).tiers,
      access: 'keys',
      ...options,
    },
    {
      codeSource: sequenceOfCodes([108]),
      logger,
      ...(now ? { now } : {}),
      onRecorded,
    },
  );
  return {
    server,
    port: server.address.port,
    events,
    log,
    waitFor: waitForEvent,
    stop: () => server.close(),
  };
}

/** A raw HELLO with `credential` (undefined: none); the server's first frame, its type and body. */
async function hello(port: number, credential?: unknown): Promise<{ type: number; body: Record<string, unknown> }> {
  const connection = await RawConnection.open(port);
  connection.sendJson(MessageType.HELLO, { versions: [1], ...(credential === undefined ? {} : { credential }) });
  const frame = await within(connection.next(), 'the first frame');
  connection.destroy();
  if (!frame) throw new Error('closed without a first frame');
  return { type: frame.type, body: parseJsonBody(frame.body) };
}

function connect(port: number, credential?: string): Promise<ImgcacheClient> {
  return ImgcacheClient.connect({ host: '127.0.0.1', port, ...(credential === undefined ? {} : { credential }) });
}

const discard = { write: () => undefined };

async function refusalCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ServerError) return error.body.code;
    if (error instanceof RejectedError) return error.reject.reason;
    throw error;
  }
  return 'not refused';
}

test('[P-60] [P-62] keys mode: no key, a malformed key, a wrong key are typed REJECTs, on record with the name claimed', async () => {
  const { database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  const running = await start(database, tiersFile);
  try {
    const none = await hello(running.port);
    assert.equal([none.type, none.body.reason], [MessageType.REJECT, 'credential-required']);
    const malformed = await hello(running.port, 'hunter2');
    assert.equal([malformed.type, malformed.body.reason], [MessageType.REJECT, 'credential-malformed']);
    assert.not.match(String(malformed.body.message), /hunter2/, 'the message does not echo the credential');
    const wrong = `${key.slice(0, 22)}${'A'.repeat(43)}`; // alice's key id, another secret
    const invalid = await hello(running.port, wrong);
    assert.equal([invalid.type, invalid.body.reason], [MessageType.REJECT, 'credential-invalid']);
    const record = await running.waitFor(
      (event) => event.type === 'connection-rejected' && event.data.reason === 'credential-invalid',
    );
    assert.is(record.type === 'connection-rejected' && record.data.identity, 'alice');
    assert.is(record.type === 'connection-rejected' && record.data.keyId, key.slice(5, 21));
    assert.match(String(record.type === 'connection-rejected' && record.data.remote), /^127\.0\.0\.1:\d+$/);
    assert.not.ok(JSON.stringify(record).includes('AAAAAAAAAA'), 'the secret tried is not on record');

    // [P-68] the right key: the WELCOME names the identity and its tier; its quota runs over a day
    const client = await connect(running.port, key);
    assert.equal(
      [client.welcome.session.identity, client.welcome.session.tier, client.welcome.session.usageScope],
      ['alice', 'bronze', 'own'],
    );
    assert.equal([client.welcome.quota.limit, client.welcome.quota.period], [2, 'day']);
    assert.match(String(client.welcome.quota.resetsAt), /T00:00:00\.000Z$/);
    await client.exit();
  } finally {
    await running.stop();
  }
});

test('[P-60] a client registered while the server runs is admitted at once, its key not taken for a guess', async () => {
  const { database, tiersFile } = setUp();
  const running = await start(database, tiersFile);
  try {
    const key = clients(database, tiersFile, ['add', 'late'], 'silver');
    const client = await connect(running.port, key); // no wait for the registry's next look
    assert.equal([client.welcome.session.identity, client.welcome.session.tier], ['late', 'silver']);
    await client.exit();
  } finally {
    await running.stop();
  }
});

test("[P-64] a keyed quota is the identity's: carried across reconnects and a restart; [P-21] refused past it", async () => {
  const { database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  let running = await start(database, tiersFile);
  try {
    const first = await connect(running.port, key);
    const served = await first.getInto('sunset.png', discard);
    assert.equal([served.quota.used, served.quota.remaining, served.quota.period], [1, 1, 'day']);
    await first.exit();
    const second = await connect(running.port, key);
    assert.equal([second.welcome.quota.used, second.welcome.quota.remaining], [1, 1], 'the reconnect keeps the count');
    // a conditional get of an image held current stays free [P-36]
    const again = await second.getImage('sunset.png', discard, { have: served.end.sha256 });
    assert.equal([again.status, again.quota.used], ['not-modified', 1]);
    await second.getInto('mandelbrot.png', discard);
    await second.exit();
    await running.stop();
    running = await start(database, tiersFile);
    const third = await connect(running.port, key);
    assert.equal([third.welcome.quota.used, third.welcome.quota.remaining], [2, 0], 'rebuilt from the history');
    // `clients list` reads the same from the history: used this period, the session open now, when last seen
    const [row] = JSON.parse(clients(database, tiersFile, ['list', '--json'])) as Array<Record<string, unknown>>;
    assert.equal([row?.name, row?.used, row?.limit, row?.sessionsOpen], ['alice', 2, 2, 1]);
    assert.ok(Date.now() - Date.parse(String(row?.lastSeen)) < 60_000, 'seen just now');
    assert.is(await refusalCode(third.getInto('checkerboard-dice.png', discard)), 'quota-exhausted');
    // [P-66] a tier change reaches the running server: the next session has the new tier (no event announces it)
    clients(database, tiersFile, ['set-tier', 'alice', 'platinum']);
  } catch (error) {
    await running.stop();
    throw error;
  }
  try {
    // a new session every 50 ms, for at most 5 s: the assertion below says what the last one was told
    let tier = '';
    await eventually(
      async () => {
        const client = await connect(running.port, key);
        tier = client.welcome.session.tier;
        await client.exit();
        return tier === 'platinum';
      },
      'the tier change seen by a new session',
      5_000,
      50,
    ).catch(() => undefined);
    assert.is(tier, 'platinum', 'the tier change is seen within 5 s');
  } finally {
    await running.stop();
  }
});

test("[P-42] [P-64] a transfer cut short does not count toward the identity's quota, live or rebuilt", async () => {
  const { folder, database, tiersFile } = setUp();
  const images = path.join(folder, 'images');
  mkdirSync(images);
  writeFileSync(path.join(images, 'big.png'), randomBytes(32 * 1024 * 1024)); // more than any socket buffers hold
  const key = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  let running = await start(database, tiersFile, { cacheDir: images });
  try {
    const raw = await RawConnection.open(running.port);
    raw.sendJson(MessageType.HELLO, { versions: [1], credential: key });
    await raw.nextJson(MessageType.WELCOME);
    raw.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'big.png' });
    const reply = await raw.nextJson(MessageType.REPLY);
    assert.equal(reply.quota, {
      limit: 2,
      used: 1,
      remaining: 1,
      period: 'day',
      resetsAt: (reply.quota as Quota).resetsAt,
    });
    raw.destroy(); // gone in the middle of the stream
    await within(
      running.waitFor((event) => event.type === 'transfer-incomplete'),
      'the transfer on record as incomplete',
    );
    await running.waitFor((event) => event.type === 'session-closed');
    const again = await connect(running.port, key);
    assert.equal([again.welcome.quota.used, again.welcome.quota.remaining], [0, 2], 'given back at once');
    await again.exit();
    await running.stop();
    running = await start(database, tiersFile, { cacheDir: images });
    const rebuilt = await connect(running.port, key);
    assert.equal([rebuilt.welcome.quota.used, rebuilt.welcome.quota.remaining], [0, 2], 'and after a restart');
    await rebuilt.exit();
  } finally {
    await running.stop();
  }
});

test('[P-66] a tier change reaches an open session within a second: its next answer has the new quota', async () => {
  const { database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  const running = await start(database, tiersFile);
  try {
    const client = await connect(running.port, key);
    assert.equal([client.welcome.quota.limit, client.welcome.quota.period], [2, 'day']);
    const changedAt = Date.now();
    clients(database, tiersFile, ['set-tier', 'alice', 'gold']);
    let quota = client.welcome.quota;
    while (quota.period !== 'hour' && Date.now() - changedAt < 2_000) {
      await new Promise((resolve) => setTimeout(resolve, 50)); // polls the answers; no event announces the change
      quota = (await client.list()).quota;
    }
    assert.equal([quota.limit, quota.period], [1, 'hour']);
    assert.ok(Date.now() - changedAt < 1_000, `seen after ${Date.now() - changedAt} ms`);
    await client.exit();
  } finally {
    await running.stop();
  }
});

test('[P-64] the period turns on the clock (injected, no sleeping): the same session gets a fresh quota', async () => {
  const { database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'gail'], 'gold');
  let now = Date.parse('2026-11-28T21:59:59.000Z');
  const running = await start(database, tiersFile, {}, () => now);
  try {
    const client = await connect(running.port, key);
    assert.equal([client.welcome.quota.limit, client.welcome.quota.resetsAt], [1, '2026-11-28T22:00:00.000Z']);
    const first = await client.getInto('sunset.png', discard);
    assert.equal([first.quota.remaining, first.quota.resetsAt], [0, '2026-11-28T22:00:00.000Z']);
    const list = await client.list();
    assert.equal([list.quota.remaining, list.quota.period], [0, 'hour']);
    now = Date.parse('2026-11-28T22:00:00.000Z');
    const second = await client.getInto('mandelbrot.png', discard);
    assert.equal(
      [second.quota.used, second.quota.remaining, second.quota.resetsAt],
      [1, 0, '2026-11-28T23:00:00.000Z'],
    );
    assert.is(await refusalCode(client.getInto('checkerboard-dice.png', discard)), 'quota-exhausted');
  } finally {
    await running.stop();
  }
});

test('[P-65] two sessions of one identity against a limit of one: the second is REJECT too-many-sessions', async () => {
  const { database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'alice'], 'silver');
  const other = clients(database, tiersFile, ['add', 'bob'], 'silver');
  const running = await start(database, tiersFile, { maxSessionsPerIdentity: 1 });
  try {
    const first = await connect(running.port, key);
    const second = await hello(running.port, key);
    assert.equal([second.type, second.body.reason], [MessageType.REJECT, 'too-many-sessions']);
    assert.ok(Number(second.body.retryAfterMs) >= 0);
    const bob = await connect(running.port, other); // another identity is not held back
    await bob.exit();
    await first.exit();
    await running.waitFor(
      (event) =>
        event.type === 'session-closed' && event.session === Number(first.welcome.session.name.slice('client-'.length)),
    );
    const third = await connect(running.port, key);
    assert.is(third.welcome.session.identity, 'alice');
    await third.exit();
  } finally {
    await running.stop();
  }
});

test('[P-63] a guesser is throttled per address: past 5 refused keys even the right key waits', async () => {
  const { database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  const running = await start(database, tiersFile);
  try {
    for (let guess = 0; guess < 5; guess++) {
      const refused = await hello(running.port, `imgc_${'0'.repeat(15)}${guess}_${'B'.repeat(43)}`);
      assert.is(refused.body.reason, 'credential-invalid', `guess ${guess}`);
    }
    const sixth = await hello(running.port, `imgc_${'1'.repeat(16)}_${'C'.repeat(43)}`);
    assert.is(sixth.body.reason, 'credential-invalid');
    assert.ok(Number(sixth.body.retryAfterMs) > 0, 'the failure that starts the block says how long');
    const right = await hello(running.port, key);
    assert.equal([right.type, right.body.reason], [MessageType.REJECT, 'credential-throttled']);
    assert.ok(Number(right.body.retryAfterMs) > 0 && Number(right.body.retryAfterMs) <= 1_000);
    await running.waitFor(
      (event) => event.type === 'connection-rejected' && event.data.reason === 'credential-throttled',
    );
  } finally {
    await running.stop();
  }
});

test('[P-66] `clients revoke` while the server runs closes the open session (NOTICE revoked) and refuses the key', async () => {
  const { database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  const running = await start(database, tiersFile);
  try {
    const client = await connect(running.port, key);
    const notice = new Promise((resolve) => client.once('notice', resolve));
    const revoked = await runCommand(SERVER_BIN, ['clients', 'revoke', 'alice', '--database', database]);
    assert.is(revoked.status, 0, revoked.stderr);
    assert.is(
      revoked.stdout,
      'alice is revoked: running servers refuse its key and close its open sessions within a second\n',
    );
    assert.equal(await within(notice, 'the NOTICE', 5_000), {
      kind: 'revoked',
      message: 'your key was revoked by the operator',
      closing: true,
    });
    const closed = await within(
      running.waitFor((event) => event.type === 'session-closed'),
      'the close on record',
    );
    assert.is(closed.type === 'session-closed' && closed.data.reason, 'identity-revoked');
    const again = await hello(running.port, key);
    assert.equal([again.type, again.body.reason], [MessageType.REJECT, 'credential-revoked']);
  } finally {
    await running.stop();
  }
});

test("[P-60] mixed mode: anonymous sessions get the operator's tier, keyed ones theirs", async () => {
  const { database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'pat'], 'platinum');
  const running = await start(database, tiersFile, { access: 'mixed', anonymousTier: 'silver' });
  try {
    const anonymous = await connect(running.port);
    assert.equal(
      [anonymous.welcome.session.tier, anonymous.welcome.session.identity, anonymous.welcome.quota],
      ['silver', undefined, { limit: 4, used: 0, remaining: 4 }],
    );
    assert.ok(anonymous.welcome.session.code >= 400 && anonymous.welcome.session.code <= 699, 'the code says the tier');
    await anonymous.exit();
    const keyed = await connect(running.port, key);
    assert.equal([keyed.welcome.session.tier, keyed.welcome.session.identity], ['platinum', 'pat']);
    await keyed.exit();
    const bad = await hello(running.port, 'imgc_nope');
    assert.is(bad.body.reason, 'credential-malformed', 'a bad key is refused, not taken as anonymous');
  } finally {
    await running.stop();
  }
});

test("[P-67] usage: a keyed bronze client reads its own sessions only; platinum reads everyone's, with identities", async () => {
  const { database, tiersFile } = setUp();
  const alice = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  const bob = clients(database, tiersFile, ['add', 'bob'], 'bronze');
  const root = clients(database, tiersFile, ['add', 'root'], 'platinum');
  const running = await start(database, tiersFile, { access: 'mixed', maxSessionsPerIdentity: 2 });
  try {
    for (const key of [alice, bob, undefined, alice]) {
      const client = await connect(running.port, key);
      await client.getInto('sunset.png', discard);
      await client.exit();
    }
    const reader = await connect(running.port, alice);
    const own = (await reader.usage()) as { clients: Array<{ name: string; identity?: string }>; rejected: unknown[] };
    assert.equal(
      own.clients.map((client) => client.identity),
      ['alice', 'alice', 'alice'],
      'its two past sessions and this one, nobody else',
    );
    assert.equal(own.rejected, []);
    await reader.exit();
    const anonymous = await connect(running.port);
    assert.is(await refusalCode(anonymous.usage()), 'usage-forbidden', 'an anonymous bronze session may not');
    anonymous.close();
    const admin = await connect(running.port, root);
    const all = (await admin.usage()) as { clients: Array<{ identity?: string }> };
    assert.equal(
      all.clients.map((client) => client.identity ?? null),
      ['alice', 'bob', null, 'alice', 'alice', null, 'root'],
    );
    await admin.exit();
  } finally {
    await running.stop();
  }
});

test('[P-60] the CLI takes the key from --key-file or IMGCACHE_KEY, and refuses one on the command line', async () => {
  const { folder, database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  const keyFile = path.join(folder, 'alice.key');
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  const running = await start(database, tiersFile);
  try {
    const where = ['--port', String(running.port), '--cache-dir', path.join(folder, 'cache')];
    const fromFile = await runCommand(CLIENT_BIN, [...where, '--key-file', keyFile, 'list']);
    assert.is(fromFile.status, 0, fromFile.stderr);
    assert.match(
      fromFile.stdout,
      /you are alice \(session client-\d+\), code \d+, tier bronze; 2 of 2 image requests left this day/,
    );
    const fromEnv = await runCommand(CLIENT_BIN, [...where, 'list'], { IMGCACHE_KEY: key });
    assert.is(fromEnv.status, 0, fromEnv.stderr);
    const onCommandLine = await runCommand(CLIENT_BIN, [...where, '--key', key, 'list']);
    assert.is(onCommandLine.status, 2);
    assert.match(onCommandLine.stderr, /not taken on the command line/);
    const none = await runCommand(CLIENT_BIN, [...where, 'list'], { IMGCACHE_KEY: '' });
    assert.is(none.status, 3);
    assert.match(none.stderr, /\[credential-required\]/);
  } finally {
    await running.stop();
  }
});

test('[P-66] `clients rotate` while the server runs: the old key is refused within a second, its open session goes on', async () => {
  const { database, tiersFile } = setUp();
  const running = await start(database, tiersFile);
  try {
    // Registered while the server runs, as rotated: the commands on their own connection, the server told by its look.
    const add = ['clients', 'add', 'alice', '--tier', 'bronze', '--tiers', tiersFile, '--history', database];
    const key = (await runCommand(SERVER_BIN, add)).stdout.trim();
    const open = await connect(running.port, key);
    const rotate = await runCommand(SERVER_BIN, ['clients', 'rotate', 'alice', '--history', database]);
    const rotatedAt = Date.now();
    assert.is(rotate.status, 0, rotate.stderr);
    assert.equal(
      rotate.stderr,
      'new key for alice: running servers stop taking the old one within a second (sessions already open with it ' +
        'go on). The new key, shown this once:\n',
    );
    const rotated = rotate.stdout.trim();
    await eventually(
      () => running.log.some((line) => line.includes('"change":"rotated"')),
      'the server seeing the rotation',
      1_000,
    );
    assert.ok(Date.now() - rotatedAt < 1_000, 'seen within a second');
    assert.is((await hello(running.port, key)).body.reason, 'credential-invalid', 'the old key, from then on');
    await open.getInto('sunset.png', discard); // the session opened with the old key was not closed
    await open.exit();
    const again = await connect(running.port, rotated);
    assert.is(again.welcome.session.identity, 'alice');
    await again.exit();
  } finally {
    await running.stop();
  }
});

test('[P-61] no secret in the log or in any history file, whatever the server was sent', async () => {
  const { folder, database, tiersFile } = setUp();
  const key = clients(database, tiersFile, ['add', 'alice'], 'bronze');
  const rotated = clients(database, tiersFile, ['rotate', 'alice']);
  const running = await start(database, tiersFile, { logLevel: 'trace' });
  const guess = `${rotated.slice(0, 22)}${'Z'.repeat(43)}`;
  try {
    assert.is((await hello(running.port, key)).body.reason, 'credential-invalid', 'the key rotated away');
    assert.is((await hello(running.port, guess)).body.reason, 'credential-invalid');
    const client = await connect(running.port, rotated);
    await client.getInto('sunset.png', discard);
    await client.exit();
  } finally {
    await running.stop();
  }
  const secrets = [key, rotated, guess].map((text) => text.slice(22));
  const log = running.log.join('');
  assert.ok(log.includes('credential-invalid'), 'the log has the refusals');
  for (const secret of secrets) assert.not.ok(log.includes(secret), 'no secret in the log');
  for (const file of readdirSync(folder)) {
    const bytes = readFileSync(path.join(folder, file)).toString('latin1');
    for (const secret of secrets) assert.not.ok(bytes.includes(secret), `no secret in ${file}`);
  }
});

test.run();
