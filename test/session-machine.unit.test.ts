import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, SimulatedClock, type SnapshotFrom } from 'xstate';
import { sessionMachine } from '../machines/session.machine.ts';
import type { SessionEffect, SessionEvent, SessionInput } from '../machines/session.types.ts';
import { DEFAULT_TIER_TABLE, type TierTable } from '../machines/tiers.ts';
import type { Request } from '../src/protocol/messages.ts';

const HANDSHAKE_MS = 5_000;
const IDLE_MS = 300_000;

function startSession(overrides: Partial<SessionInput> = {}) {
  const clock = new SimulatedClock();
  const input: SessionInput = {
    connection: 1,
    supportedVersions: [1, 2, 3],
    tiers: DEFAULT_TIER_TABLE,
    handshakeTimeoutMs: HANDSHAKE_MS,
    idleTimeoutMs: IDLE_MS,
    ...overrides,
  };
  const actor = createActor(sessionMachine, { input, clock });
  const effects: SessionEffect[] = [];
  actor.on('*', (effect) => effects.push(effect));
  actor.start();
  return {
    actor,
    clock,
    send: (event: SessionEvent) => actor.send(event),
    /** The effects emitted since the last call. */
    take: () => effects.splice(0),
    state: () => stateOf(actor.getSnapshot()),
  };
}

type Session = ReturnType<typeof startSession>;

function stateOf(snapshot: SnapshotFrom<typeof sessionMachine>): string {
  const value = snapshot.value;
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([parent, child]) => `${parent}.${String(child)}`)
    .join();
}

function hello(code: number, versions: number[] = [1]): SessionEvent {
  return { type: 'HELLO', versions, identity: { name: `client-${code}`, code } };
}

/** A session past its WELCOME, with the effects taken. */
function welcomed(code: number, overrides: Partial<SessionInput> = {}): Session {
  const session = startSession(overrides);
  session.send(hello(code));
  session.send(REPLY_SENT); // the glue has written the WELCOME
  session.take();
  return session;
}

function request(request: Request, imageExists?: boolean): SessionEvent {
  return imageExists === undefined ? { type: 'REQUEST', request } : { type: 'REQUEST', request, imageExists };
}
const list = (id: number) => request({ id, command: 'list' });
const usage = (id: number) => request({ id, command: 'usage' });
const exit = (id: number) => request({ id, command: 'exit' });
const get = (id: number, image = 'sunset.png', exists = true) => request({ id, command: 'get', image }, exists);
const REPLY_SENT: SessionEvent = { type: 'REPLY_SENT' };

const quota = (limit: number, used: number) => ({ limit, used, remaining: limit - used });

function assertClosed(session: Session, reason: string, admitted: boolean) {
  const snapshot = session.actor.getSnapshot();
  assert.is(snapshot.status, 'done');
  assert.is(session.state(), 'closed');
  assert.equal(snapshot.output, { reason, admitted });
}

// --- handshake ---------------------------------------------------------------------------------------------------

test('emits nothing at start and waits in handshake', () => {
  const session = startSession();
  assert.is(session.state(), 'handshake');
  assert.equal(session.take(), []);
});

test('[P-12] a HELLO sharing a version is welcomed with the tier of its code and a fresh quota', () => {
  const session = startSession();
  session.send(hello(108));
  assert.equal(session.take(), [
    {
      type: 'welcome',
      version: 1,
      identity: { name: 'client-108', code: 108, tier: 'bronze', canReadUsage: false },
      quota: quota(3, 0),
    },
  ]);
  assert.is(session.state(), 'active.busy', 'the WELCOME is in flight until the glue has written it');
  session.send(REPLY_SENT);
  assert.is(session.state(), 'active.idle');
});

test('[P-10] the highest version both sides speak is chosen', () => {
  const cases: Array<[number[], number]> = [
    [[1], 1],
    [[2, 1], 2],
    [[3, 2, 7], 3],
    [[9, 2, 1], 2],
  ];
  for (const [versions, expected] of cases) {
    const session = startSession({ supportedVersions: [1, 2, 3] });
    session.send(hello(950, versions));
    const [effect] = session.take();
    assert.is(effect?.type === 'welcome' && effect.version, expected, `client speaks ${versions}`);
  }
});

test('[P-10] no common version: REJECT unsupported-version with the versions spoken, then closed', () => {
  const session = startSession({ supportedVersions: [1, 2] });
  session.send(hello(108, [3, 4]));
  assert.equal(session.take(), [
    { type: 'reject', reason: 'unsupported-version', supported: [1, 2] },
    { type: 'closed', reason: 'unsupported-version', admitted: false },
  ]);
  assertClosed(session, 'unsupported-version', false);
});

test('[P-11] no HELLO within the deadline: REJECT handshake-timeout, then closed', () => {
  const session = startSession();
  session.clock.increment(HANDSHAKE_MS - 1);
  assert.equal(session.take(), []);
  session.clock.increment(1);
  assert.equal(session.take(), [
    { type: 'reject', reason: 'handshake-timeout' },
    { type: 'closed', reason: 'handshake-timeout', admitted: false },
  ]);
  assertClosed(session, 'handshake-timeout', false);
});

test('[P-11] the handshake deadline no longer runs after the WELCOME', () => {
  const session = welcomed(108);
  session.clock.increment(HANDSHAKE_MS * 2);
  assert.equal(session.take(), []);
  assert.is(session.state(), 'active.idle');
});

test('[P-11] [P-3] a first frame the glue could not parse: REJECT bad-hello or frame-too-large', () => {
  const cases = [
    ['malformed-message', 'bad-hello'],
    ['unexpected-message', 'bad-hello'],
    ['frame-too-large', 'frame-too-large'],
  ] as const;
  for (const [code, reason] of cases) {
    const session = startSession();
    session.send({ type: 'INVALID_REQUEST', requestId: null, code, message: 'nope' });
    assert.equal(session.take(), [
      { type: 'reject', reason },
      { type: 'closed', reason, admitted: false },
    ]);
    assertClosed(session, reason, false);
  }
});

test('[P-28] SHUTDOWN in handshake: REJECT shutting-down, closed, not admitted', () => {
  const session = startSession();
  session.send({ type: 'SHUTDOWN' });
  assert.equal(session.take(), [
    { type: 'reject', reason: 'shutting-down' },
    { type: 'closed', reason: 'server-shutdown', admitted: false },
  ]);
  assertClosed(session, 'server-shutdown', false);
});

test('a REQUEST or REPLY_SENT in handshake is ignored (the glue sends neither before the WELCOME)', () => {
  const session = startSession();
  session.send(list(1));
  session.send(REPLY_SENT);
  assert.equal(session.take(), []);
  assert.is(session.state(), 'handshake');
});

test('[P-21] a tier with quota 0 is welcomed straight into quotaExhausted', () => {
  const tiers: TierTable = [{ from: 100, to: 999, tier: 'none', quota: 0, canReadUsage: false }];
  const session = startSession({ tiers });
  session.send(hello(500));
  const [effect] = session.take();
  assert.equal(effect?.type === 'welcome' && effect.quota, quota(0, 0));
  session.send(REPLY_SENT);
  assert.is(session.state(), 'quotaExhausted.idle');
});

test('[P-21] input quotaUsed is counted from the WELCOME on', () => {
  const session = startSession({ quotaUsed: 2 });
  session.send(hello(108));
  const [effect] = session.take();
  assert.equal(effect?.type === 'welcome' && effect.quota, quota(3, 2));
  session.send(REPLY_SENT);
  session.send(get(1));
  assert.equal(session.take(), [{ type: 'serve-image', requestId: 1, image: 'sunset.png', quota: quota(3, 3) }]);
  assert.is(session.state(), 'quotaExhausted.busy');
});

// --- requests -----------------------------------------------------------------------------------------------------

test('[P-18] list is served with the identity and the unchanged quota; busy until REPLY_SENT', () => {
  const session = welcomed(450);
  session.send(list(1));
  assert.equal(session.take(), [
    {
      type: 'serve-list',
      requestId: 1,
      identity: { name: 'client-450', code: 450, tier: 'silver', canReadUsage: false },
      quota: quota(5, 0),
    },
  ]);
  assert.is(session.state(), 'active.busy');
  session.send(REPLY_SENT);
  assert.is(session.state(), 'active.idle');
  assert.equal(session.take(), []);
});

test('[P-19] get of an existing image is served and counted', () => {
  const session = welcomed(750);
  session.send(get(7, 'sunset.png'));
  assert.equal(session.take(), [{ type: 'serve-image', requestId: 7, image: 'sunset.png', quota: quota(10, 1) }]);
  assert.is(session.state(), 'active.busy');
});

for (const [code, limit] of [
  [108, 3],
  [450, 5],
  [750, 10],
  [950, 20],
] as const) {
  test(`[P-20] [P-21] code ${code}: ${limit} gets served, then list/usage still work, the next get is fatal`, () => {
    const session = welcomed(code);
    for (let used = 1; used <= limit; used++) {
      session.send(get(used));
      assert.equal(session.take(), [
        { type: 'serve-image', requestId: used, image: 'sunset.png', quota: quota(limit, used) },
      ]);
      // The last allowed get keeps the session open, in quotaExhausted.
      assert.is(session.state(), used < limit ? 'active.busy' : 'quotaExhausted.busy', `after get ${used}`);
      session.send(REPLY_SENT);
    }
    assert.is(session.state(), 'quotaExhausted.idle');

    session.send(list(100));
    assert.equal(session.take()[0]?.type, 'serve-list');
    session.send(REPLY_SENT);
    session.send(usage(101));
    const [usageAnswer] = session.take();
    assert.is(
      usageAnswer?.type === 'refuse' ? usageAnswer.code : usageAnswer?.type,
      code >= 900 ? 'serve-usage' : 'usage-forbidden',
    );
    session.send(REPLY_SENT);
    session.send(get(102, 'missing.png', false));
    assert.equal(session.take()[0], {
      type: 'refuse',
      requestId: 102,
      code: 'image-not-found',
      message: "no image named 'missing.png'",
      fatal: false,
      quota: quota(limit, limit),
      command: 'get',
      image: 'missing.png',
    });
    session.send(REPLY_SENT);
    assert.is(session.state(), 'quotaExhausted.idle');

    session.send(get(103));
    assert.equal(session.take(), [
      {
        type: 'refuse',
        requestId: 103,
        code: 'quota-exhausted',
        message: `the quota of ${limit} images is used up`,
        fatal: true,
        quota: quota(limit, limit),
        command: 'get',
        image: 'sunset.png',
      },
      { type: 'closed', reason: 'quota-exhausted', admitted: true },
    ]);
    assertClosed(session, 'quota-exhausted', true);
  });
}

test('[P-21] a missing image is refused, not fatal, and costs nothing', () => {
  const session = welcomed(108);
  session.send(get(1, '../etc/passwd', false));
  assert.equal(session.take(), [
    {
      type: 'refuse',
      requestId: 1,
      code: 'image-not-found',
      message: "no image named '../etc/passwd'",
      fatal: false,
      quota: quota(3, 0),
      command: 'get',
      image: '../etc/passwd',
    },
  ]);
  assert.is(session.state(), 'active.busy');
  session.send(REPLY_SENT);
  assert.is(session.state(), 'active.idle');
});

test('[P-21] a get without imageExists is treated as a missing image', () => {
  const session = welcomed(108);
  session.send(request({ id: 1, command: 'get', image: 'x.png' }));
  const [effect] = session.take();
  assert.is(effect?.type === 'refuse' && effect.code, 'image-not-found');
});

// --- conditional get [P-34] [P-35] [P-36] -------------------------------------------------------------------------

const getHeld = (id: number, unchanged: boolean, image = 'sunset.png'): SessionEvent => ({
  type: 'REQUEST',
  request: { id, command: 'get', image, have: 'a'.repeat(64) },
  imageExists: true,
  imageUnchanged: unchanged,
});

test('[P-35] [P-36] a get of an unchanged image is answered not-modified and costs nothing; busy until REPLY_SENT', () => {
  const session = welcomed(108);
  session.send(getHeld(4, true));
  assert.equal(session.take(), [{ type: 'serve-not-modified', requestId: 4, image: 'sunset.png', quota: quota(3, 0) }]);
  assert.is(session.state(), 'active.busy');
  session.send(REPLY_SENT);
  assert.is(session.state(), 'active.idle');
});

test('[P-34] a get whose have is not current is served and counted as usual', () => {
  const session = welcomed(108);
  session.send(getHeld(5, false));
  assert.equal(session.take(), [{ type: 'serve-image', requestId: 5, image: 'sunset.png', quota: quota(3, 1) }]);
});

test('[P-36] not-modified on the last request left does not exhaust the quota', () => {
  const session = welcomed(108, { quotaUsed: 2 });
  session.send(getHeld(1, true));
  assert.is(session.take()[0]?.type, 'serve-not-modified');
  session.send(REPLY_SENT);
  assert.is(session.state(), 'active.idle');
});

test('[P-36] with the quota exhausted an unchanged image is still revalidated; a changed one is refused, fatal', () => {
  const session = welcomed(108, { quotaUsed: 3 });
  assert.is(session.state(), 'quotaExhausted.idle');
  session.send(getHeld(1, true));
  assert.equal(session.take(), [{ type: 'serve-not-modified', requestId: 1, image: 'sunset.png', quota: quota(3, 3) }]);
  assert.is(session.state(), 'quotaExhausted.busy');
  session.send(REPLY_SENT);
  session.send(getHeld(2, false));
  const [refusal, closed] = session.take();
  assert.is(refusal?.type === 'refuse' && refusal.code, 'quota-exhausted');
  assert.equal(closed, { type: 'closed', reason: 'quota-exhausted', admitted: true });
});

test('[P-21] [P-34] a get of a missing image with imageUnchanged set is still refused as missing', () => {
  const session = welcomed(108);
  session.send({ ...getHeld(1, true), imageExists: false } as SessionEvent);
  const [effect] = session.take();
  assert.is(effect?.type === 'refuse' && effect.code, 'image-not-found');
});

test('[P-22] usage is served to platinum', () => {
  const session = welcomed(950);
  session.send(usage(3));
  assert.equal(session.take(), [{ type: 'serve-usage', requestId: 3, quota: quota(20, 0) }]);
  assert.is(session.state(), 'active.busy');
});

test('[P-22] usage is forbidden, not fatal, to bronze, silver and gold', () => {
  for (const [code, tier, limit] of [
    [108, 'bronze', 3],
    [450, 'silver', 5],
    [899, 'gold', 10],
  ] as const) {
    const session = welcomed(code);
    session.send(usage(3));
    assert.equal(session.take(), [
      {
        type: 'refuse',
        requestId: 3,
        code: 'usage-forbidden',
        message: `the ${tier} tier may not read usage`,
        fatal: false,
        quota: quota(limit, 0),
        command: 'usage',
      },
    ]);
    assert.is(session.state(), 'active.busy');
  }
});

test('[P-23] exit is acknowledged and the session closes with client-exit', () => {
  const session = welcomed(108);
  session.send(get(1));
  session.send(REPLY_SENT);
  session.take();
  session.send(exit(2));
  assert.equal(session.take(), [
    { type: 'acknowledge-exit', requestId: 2, quota: quota(3, 1) },
    { type: 'closed', reason: 'client-exit', admitted: true },
  ]);
  assertClosed(session, 'client-exit', true);
});

test('[P-21] [P-23] exit still works in quotaExhausted', () => {
  const session = welcomed(108, { quotaUsed: 3 });
  assert.is(session.state(), 'quotaExhausted.idle');
  session.send(exit(9));
  assert.equal(session.take(), [
    { type: 'acknowledge-exit', requestId: 9, quota: quota(3, 3) },
    { type: 'closed', reason: 'client-exit', admitted: true },
  ]);
  assertClosed(session, 'client-exit', true);
});

test('[P-26] a non-fatal INVALID_REQUEST is refused with its id and code, costs nothing, busy until REPLY_SENT', () => {
  const session = welcomed(108);
  session.send({ type: 'INVALID_REQUEST', requestId: 7, code: 'unknown-command', message: "no command 'fly'" });
  session.send({ type: 'REPLY_SENT' });
  session.send({ type: 'INVALID_REQUEST', requestId: null, code: 'bad-request', message: 'id is missing' });
  assert.equal(session.take(), [
    {
      type: 'refuse',
      requestId: 7,
      code: 'unknown-command',
      message: "no command 'fly'",
      fatal: false,
      quota: quota(3, 0),
    },
    {
      type: 'refuse',
      requestId: null,
      code: 'bad-request',
      message: 'id is missing',
      fatal: false,
      quota: quota(3, 0),
    },
  ]);
  assert.is(session.state(), 'active.busy');
});

test('[P-26] a fatal INVALID_REQUEST is refused and closes with its code as the reason', () => {
  for (const code of ['malformed-message', 'frame-too-large', 'unexpected-message', 'internal-error'] as const) {
    const session = welcomed(108, { quotaUsed: 3 });
    session.send({ type: 'INVALID_REQUEST', requestId: null, code, message: 'bad' });
    assert.equal(session.take(), [
      { type: 'refuse', requestId: null, code, message: 'bad', fatal: true, quota: quota(3, 3) },
      { type: 'closed', reason: code, admitted: true },
    ]);
    assertClosed(session, code, true);
  }
});

// --- timeouts, shutdown, closing ----------------------------------------------------------------------------------

test('[P-27] idle timeout: NOTICE idle-timeout and closed, after exactly idleTimeoutMs', () => {
  const session = welcomed(108);
  session.clock.increment(IDLE_MS - 1);
  assert.equal(session.take(), []);
  session.clock.increment(1);
  assert.equal(session.take(), [
    { type: 'notice', kind: 'idle-timeout' },
    { type: 'closed', reason: 'idle-timeout', admitted: true },
  ]);
  assertClosed(session, 'idle-timeout', true);
});

test('[P-27] the idle timer does not run while an answer is in flight', () => {
  const session = welcomed(108);
  session.clock.increment(IDLE_MS - 1);
  session.send(get(1));
  session.take();
  session.clock.increment(IDLE_MS * 10);
  assert.equal(session.take(), []);
  assert.is(session.state(), 'active.busy');
});

test('[P-27] the idle timer restarts on every REPLY_SENT', () => {
  const session = welcomed(108);
  for (let id = 1; id <= 3; id++) {
    session.clock.increment(IDLE_MS - 1);
    session.send(list(id));
    session.clock.increment(IDLE_MS);
    session.send(REPLY_SENT);
  }
  session.take();
  session.clock.increment(IDLE_MS - 1);
  assert.is(session.state(), 'active.idle');
  session.clock.increment(1);
  assertClosed(session, 'idle-timeout', true);
});

test('[P-27] the idle timeout also runs in quotaExhausted', () => {
  const session = welcomed(108, { quotaUsed: 3 });
  session.clock.increment(IDLE_MS);
  assert.equal(session.take(), [
    { type: 'notice', kind: 'idle-timeout' },
    { type: 'closed', reason: 'idle-timeout', admitted: true },
  ]);
});

test('[P-28] SHUTDOWN while idle: NOTICE shutting-down and closed at once', () => {
  const session = welcomed(108);
  session.send({ type: 'SHUTDOWN' });
  assert.equal(session.take(), [
    { type: 'notice', kind: 'shutting-down' },
    { type: 'closed', reason: 'server-shutdown', admitted: true },
  ]);
  assertClosed(session, 'server-shutdown', true);
});

test('[P-28] SHUTDOWN while busy waits for REPLY_SENT', () => {
  for (const quotaUsed of [0, 2]) {
    const session = welcomed(108, { quotaUsed });
    session.send(get(1));
    session.take();
    session.send({ type: 'SHUTDOWN' });
    assert.equal(session.take(), []);
    assert.is(session.state(), quotaUsed === 0 ? 'active.busy' : 'quotaExhausted.busy');
    session.send(REPLY_SENT);
    assert.equal(session.take(), [
      { type: 'notice', kind: 'shutting-down' },
      { type: 'closed', reason: 'server-shutdown', admitted: true },
    ]);
    assertClosed(session, 'server-shutdown', true);
  }
});

test('[P-31] PEER_CLOSED closes from any state with its reason; admitted says whether a WELCOME happened', () => {
  const inHandshake = startSession();
  inHandshake.send({ type: 'PEER_CLOSED', reason: 'client-closed' });
  assert.equal(inHandshake.take(), [{ type: 'closed', reason: 'client-closed', admitted: false }]);
  assertClosed(inHandshake, 'client-closed', false);

  const idle = welcomed(108);
  idle.send({ type: 'PEER_CLOSED', reason: 'client-closed' });
  assert.equal(idle.take(), [{ type: 'closed', reason: 'client-closed', admitted: true }]);

  const busy = welcomed(108, { quotaUsed: 2 });
  busy.send(get(1));
  busy.take();
  busy.send({ type: 'PEER_CLOSED', reason: 'connection-reset' });
  assert.equal(busy.take(), [{ type: 'closed', reason: 'connection-reset', admitted: true }]);
  assertClosed(busy, 'connection-reset', true);
});

test('[P-26] HISTORY_FAILED: ERROR history-unavailable with id null, fatal, then closed', () => {
  const session = welcomed(108);
  session.send(get(1));
  session.take();
  session.send({ type: 'HISTORY_FAILED' });
  assert.equal(session.take(), [
    {
      type: 'refuse',
      requestId: null,
      code: 'history-unavailable',
      message: 'the server cannot record this session in its history',
      fatal: true,
      quota: quota(3, 1),
    },
    { type: 'closed', reason: 'history-unavailable', admitted: true },
  ]);
  assertClosed(session, 'history-unavailable', true);
});

test('[P-26] HISTORY_FAILED in handshake closes unadmitted, with a zero quota', () => {
  const session = startSession();
  session.send({ type: 'HISTORY_FAILED' });
  const effects = session.take();
  assert.equal(effects[0]?.type === 'refuse' && effects[0].quota, quota(0, 0));
  assert.equal(effects[1], { type: 'closed', reason: 'history-unavailable', admitted: false });
});

test('[P-27] the idle timer starts when the WELCOME has been written, not when it was decided', () => {
  const session = startSession();
  session.send(hello(108));
  session.clock.increment(IDLE_MS * 3); // a slow history commit: the WELCOME is not out yet
  assert.is(session.state(), 'active.busy');
  session.send(REPLY_SENT);
  session.clock.increment(IDLE_MS - 1);
  assert.is(session.state(), 'active.idle');
  session.clock.increment(1);
  assertClosed(session, 'idle-timeout', true);
});

test('a stray REPLY_SENT while idle is ignored', () => {
  const session = welcomed(108);
  session.clock.increment(IDLE_MS - 1);
  session.send(REPLY_SENT);
  session.clock.increment(1);
  assertClosed(session, 'idle-timeout', true);
});

test('[P-30] closed is the last effect: events after it are ignored', () => {
  const session = welcomed(108);
  session.send(exit(1));
  session.take();
  session.send(list(2));
  session.send({ type: 'PEER_CLOSED', reason: 'client-closed' });
  session.clock.increment(IDLE_MS * 2);
  assert.equal(session.take(), []);
  assertClosed(session, 'client-exit', true);
});

test.run();
