import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, SimulatedClock, type SnapshotFrom } from 'xstate';
import { sessionMachine } from '../machines/session.machine.ts';
import type { SessionEffect, SessionEvent, SessionInput } from '../machines/session.types.ts';
import { DEFAULT_TIER_TABLE, type TierTable } from '../machines/tiers.ts';
import type { Request } from '../src/protocol/messages.ts';

const HANDSHAKE_MS = 5_000;
const IDLE_MS = 300_000;

/**
 * The session's clock: xstate's SimulatedClock, whose `increment` and `set` move time first and then fire the timers
 * that fell due, late, as a busy event loop would; `advanceTo` fires each timer at the time it falls due, as an idle
 * one would. It also counts the timers armed.
 */
function sessionClock() {
  const clock = new SimulatedClock();
  const dueAt = new Map<number, number>();
  let armed = 0;
  return {
    clock,
    setTimeout: (fn: () => void, ms: number): number => {
      armed++;
      const id = clock.setTimeout(() => {
        dueAt.delete(id);
        fn();
      }, ms);
      dueAt.set(id, clock.now() + ms);
      return id;
    },
    clearTimeout: (id: number) => {
      dueAt.delete(id);
      clock.clearTimeout(id);
    },
    armed: () => armed,
    advanceTo: (at: number) => {
      for (let fired = 0; Math.min(...dueAt.values()) <= at; fired++) {
        if (fired === 1_000) throw new Error(`timers kept falling due before ${at}`);
        clock.set(Math.min(...dueAt.values()));
      }
      clock.set(at);
    },
  };
}

function startSession(overrides: Partial<SessionInput> = {}) {
  const timers = sessionClock();
  const { clock } = timers;
  const input: SessionInput = {
    connection: 1,
    supportedVersions: [1, 2, 3],
    tiers: DEFAULT_TIER_TABLE,
    handshakeTimeoutMs: HANDSHAKE_MS,
    idleTimeoutMs: IDLE_MS,
    ...overrides,
  };
  const actor = createActor(sessionMachine, { input, clock: timers });
  const effects: SessionEffect[] = [];
  actor.on('*', (effect) => effects.push(effect));
  actor.start();
  return {
    actor,
    clock,
    /** Moves time to `at`, firing every timer on time. */
    advanceTo: timers.advanceTo,
    send: (event: SessionEvent) => actor.send(event),
    /** The glue has written the answer in flight, now. */
    replySent: () => actor.send({ type: 'REPLY_SENT', at: clock.now() }),
    /** The effects emitted since the last call. */
    take: () => effects.splice(0),
    state: () => stateOf(actor.getSnapshot()),
    /** How many timers the session has armed so far (the handshake deadline and idle checks). */
    timersArmed: timers.armed,
  };
}

type Session = ReturnType<typeof startSession>;

/** The state, and in active and quotaExhausted whether an answer is in flight. */
function stateOf(snapshot: SnapshotFrom<typeof sessionMachine>): string {
  const state = snapshot.value;
  if (state !== 'active' && state !== 'quotaExhausted') return state;
  return `${state}, ${snapshot.context.answerInFlight ? 'answer in flight' : 'idle'}`;
}

function hello(code: number, versions: number[] = [1]): SessionEvent {
  return { type: 'HELLO', versions, identity: { name: `client-${code}`, code } };
}

/** A session past its WELCOME, with the effects taken. */
function welcomed(code: number, overrides: Partial<SessionInput> = {}): Session {
  const session = startSession(overrides);
  session.send(hello(code));
  session.replySent(); // the glue has written the WELCOME
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
  assert.is(session.state(), 'active, answer in flight', 'the WELCOME is in flight until the glue has written it');
  session.replySent();
  assert.is(session.state(), 'active, idle');
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
  assert.is(session.state(), 'active, idle');
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
  session.replySent();
  assert.equal(session.take(), []);
  assert.is(session.state(), 'handshake');
});

test('[P-21] a tier with quota 0 is welcomed straight into quotaExhausted', () => {
  const tiers: TierTable = [{ from: 100, to: 999, tier: 'none', quota: 0, canReadUsage: false }];
  const session = startSession({ tiers });
  session.send(hello(500));
  const [effect] = session.take();
  assert.equal(effect?.type === 'welcome' && effect.quota, quota(0, 0));
  session.replySent();
  assert.is(session.state(), 'quotaExhausted, idle');
});

test('[P-21] input quotaUsed is counted from the WELCOME on', () => {
  const session = startSession({ quotaUsed: 2 });
  session.send(hello(108));
  const [effect] = session.take();
  assert.equal(effect?.type === 'welcome' && effect.quota, quota(3, 2));
  session.replySent();
  session.send(get(1));
  assert.equal(session.take(), [{ type: 'serve-image', requestId: 1, image: 'sunset.png', quota: quota(3, 3) }]);
  assert.is(session.state(), 'quotaExhausted, answer in flight');
});

// --- requests -----------------------------------------------------------------------------------------------------

test('[P-18] list is served with the identity and the unchanged quota; in flight until REPLY_SENT', () => {
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
  assert.is(session.state(), 'active, answer in flight');
  session.replySent();
  assert.is(session.state(), 'active, idle');
  assert.equal(session.take(), []);
});

test('[P-19] get of an existing image is served and counted', () => {
  const session = welcomed(750);
  session.send(get(7, 'sunset.png'));
  assert.equal(session.take(), [{ type: 'serve-image', requestId: 7, image: 'sunset.png', quota: quota(10, 1) }]);
  assert.is(session.state(), 'active, answer in flight');
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
      assert.is(
        session.state(),
        used < limit ? 'active, answer in flight' : 'quotaExhausted, answer in flight',
        `after get ${used}`,
      );
      session.replySent();
    }
    assert.is(session.state(), 'quotaExhausted, idle');

    session.send(list(100));
    assert.equal(session.take()[0]?.type, 'serve-list');
    session.replySent();
    session.send(usage(101));
    const [usageAnswer] = session.take();
    assert.is(
      usageAnswer?.type === 'refuse' ? usageAnswer.code : usageAnswer?.type,
      code >= 900 ? 'serve-usage' : 'usage-forbidden',
    );
    session.replySent();
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
    session.replySent();
    assert.is(session.state(), 'quotaExhausted, idle');

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
  assert.is(session.state(), 'active, answer in flight');
  session.replySent();
  assert.is(session.state(), 'active, idle');
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

test('[P-35] [P-36] a get of an unchanged image is answered not-modified and costs nothing; in flight until REPLY_SENT', () => {
  const session = welcomed(108);
  session.send(getHeld(4, true));
  assert.equal(session.take(), [{ type: 'serve-not-modified', requestId: 4, image: 'sunset.png', quota: quota(3, 0) }]);
  assert.is(session.state(), 'active, answer in flight');
  session.replySent();
  assert.is(session.state(), 'active, idle');
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
  session.replySent();
  assert.is(session.state(), 'active, idle');
});

test('[P-36] with the quota exhausted an unchanged image is still revalidated; a changed one is refused, fatal', () => {
  const session = welcomed(108, { quotaUsed: 3 });
  assert.is(session.state(), 'quotaExhausted, idle');
  session.send(getHeld(1, true));
  assert.equal(session.take(), [{ type: 'serve-not-modified', requestId: 1, image: 'sunset.png', quota: quota(3, 3) }]);
  assert.is(session.state(), 'quotaExhausted, answer in flight');
  session.replySent();
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
  assert.is(session.state(), 'active, answer in flight');
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
    assert.is(session.state(), 'active, answer in flight');
  }
});

test('[P-23] exit is acknowledged and the session closes with client-exit', () => {
  const session = welcomed(108);
  session.send(get(1));
  session.replySent();
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
  assert.is(session.state(), 'quotaExhausted, idle');
  session.send(exit(9));
  assert.equal(session.take(), [
    { type: 'acknowledge-exit', requestId: 9, quota: quota(3, 3) },
    { type: 'closed', reason: 'client-exit', admitted: true },
  ]);
  assertClosed(session, 'client-exit', true);
});

test('[P-26] a non-fatal INVALID_REQUEST is refused with its id and code, costs nothing, in flight until REPLY_SENT', () => {
  const session = welcomed(108);
  session.send({ type: 'INVALID_REQUEST', requestId: 7, code: 'unknown-command', message: "no command 'fly'" });
  session.replySent();
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
  assert.is(session.state(), 'active, answer in flight');
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
  assert.is(session.state(), 'active, answer in flight');
});

test('[P-27] the idle timeout counts from every REPLY_SENT', () => {
  const session = welcomed(108);
  for (let id = 1; id <= 3; id++) {
    session.clock.increment(IDLE_MS - 1);
    session.send(list(id));
    session.clock.increment(IDLE_MS);
    session.replySent();
  }
  session.take();
  session.clock.increment(IDLE_MS - 1);
  assert.is(session.state(), 'active, idle');
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

// --- the idle check: one timer per idle period, re-armed for the time left [P-27] ---------------------------------
// These move time with advanceTo: every timer fires when it falls due, so the deadlines can be checked to the ms.

/** Open and quiet until `deadline` - 1 ms, closed by the idle timeout at exactly `deadline`. */
function assertIdleTimeoutAt(session: Session, deadline: number) {
  session.advanceTo(deadline - 1);
  assert.equal(session.take(), [], `nothing before ${deadline}`);
  assert.is(session.actor.getSnapshot().status, 'active', `open at ${deadline - 1}`);
  session.advanceTo(deadline);
  assert.equal(session.take(), [
    { type: 'notice', kind: 'idle-timeout' },
    { type: 'closed', reason: 'idle-timeout', admitted: true },
  ]);
  assertClosed(session, 'idle-timeout', true);
}

test('[P-27] a request just before the deadline pushes it back by a full idleTimeoutMs from the end of its answer', () => {
  // The answer is written before the first check falls due (which then finds the session idle, not long enough),
  // or after it (the check falls due with the answer in flight).
  for (const writtenAt of [IDLE_MS - 5, IDLE_MS + 250]) {
    const session = welcomed(108); // WELCOME written at 0
    session.advanceTo(IDLE_MS - 10);
    session.send(get(1));
    session.advanceTo(writtenAt);
    session.replySent();
    assert.is(session.take()[0]?.type, 'serve-image');
    assertIdleTimeoutAt(session, writtenAt + IDLE_MS);
  }
});

test('[P-27] a long answer in flight never times out, however many idle periods it lasts', () => {
  const session = welcomed(950);
  session.advanceTo(10);
  session.send(usage(1));
  session.take();
  for (let third = 1; third <= 30; third++) {
    session.advanceTo(10 + (third * IDLE_MS) / 3);
    assert.equal(session.take(), [], `after ${third} thirds of idleTimeoutMs`);
    assert.is(session.state(), 'active, answer in flight');
  }
  const writtenAt = session.clock.now() + 7;
  session.advanceTo(writtenAt);
  session.replySent();
  assertIdleTimeoutAt(session, writtenAt + IDLE_MS);
});

test('[P-27] the idle timeout falls exactly idleTimeoutMs after the last answer, whatever came before', () => {
  const session = welcomed(108); // WELCOME written at 0: the first check falls due at IDLE_MS
  const answers: Array<[requestAt: number, writtenAt: number]> = [
    [100_000, 500_000], // the check due at 300,000 falls due in flight
    [750_000, 750_010], // the check due at 800,000 finds 49,990 ms of idleness: re-armed for the rest
    [1_040_000, 1_040_000], // an answer written at once, 10 ms before that check falls due
  ];
  for (const [id, [requestAt, writtenAt]] of answers.entries()) {
    session.advanceTo(requestAt);
    session.send(list(id));
    session.advanceTo(writtenAt);
    session.replySent();
  }
  assert.equal(
    session.take().map((effect) => effect.type),
    answers.map(() => 'serve-list'),
  );
  assertIdleTimeoutAt(session, 1_040_000 + IDLE_MS);
});

test('[P-21] [P-27] after the last image, in quotaExhausted, the idle timeout counts from the end of that image', () => {
  const session = welcomed(108, { quotaUsed: 2 });
  session.advanceTo(1_000);
  session.send(get(1));
  assert.is(session.state(), 'quotaExhausted, answer in flight');
  session.advanceTo(IDLE_MS * 2); // a slow reader: checks fall due meanwhile
  session.replySent();
  assert.is(session.take()[0]?.type, 'serve-image');
  assertIdleTimeoutAt(session, IDLE_MS * 3);
});

test('[P-27] a timer that fires late never closes a session early; it is late by no more than that timer was', () => {
  const session = welcomed(108);
  session.advanceTo(200_000);
  session.send(list(1));
  session.advanceTo(200_010);
  session.replySent(); // deadline 500,010
  session.take();
  session.clock.set(490_000); // the check due at 300,000 fires only now, 190,000 ms late
  session.clock.set(500_009);
  assert.equal(session.take(), [], 'not closed before the deadline');
  assert.is(session.state(), 'active, idle');
  session.clock.set(500_010 + 190_000);
  assertClosed(session, 'idle-timeout', true);
});

test('[P-27] serving requests arms no timer: the idle check is re-armed once per idle period, not per request', () => {
  const tiers: TierTable = [{ from: 100, to: 999, tier: 'test', quota: 1_000, canReadUsage: true }];
  const session = welcomed(950, { tiers });
  const armed = session.timersArmed();
  for (let id = 1; id <= 100; id++) {
    session.advanceTo(id * 1_000);
    session.send(id % 2 === 0 ? get(id) : list(id));
    session.advanceTo(id * 1_000 + 10);
    session.replySent();
  }
  assert.is(session.take().length, 100);
  assert.is(session.timersArmed(), armed, 'no timer armed by 100 requests within one idle period');
  session.advanceTo(IDLE_MS); // the check falls due 199,990 ms after the last answer: re-armed for the rest
  assert.is(session.timersArmed(), armed + 1);
  assertIdleTimeoutAt(session, 100_010 + IDLE_MS);
});

test('[P-27] [P-40] a stream awaiting its RECEIVED is not idle; the idle timeout counts from the receipt', () => {
  for (const receivedAt of [IDLE_MS - 5, IDLE_MS * 3]) {
    const session = welcomed(108); // WELCOME written at 0
    session.advanceTo(1_000);
    session.send(get(1));
    session.advanceTo(2_000);
    session.send({ type: 'REPLY_SENT', at: session.clock.now(), receiptPending: true }); // END written
    assert.is(session.take()[0]?.type, 'serve-image');
    session.advanceTo(receivedAt - 1); // the reader still reads what the socket buffers hold
    assert.equal(session.take(), [], `not closed while the receipt is awaited, at ${receivedAt - 1}`);
    session.advanceTo(receivedAt);
    session.send({ type: 'DELIVERED', at: session.clock.now(), receiptPending: false });
    assertIdleTimeoutAt(session, receivedAt + IDLE_MS);
  }
});

test('[P-40] a RECEIVED while an answer is in flight or another stream is unacknowledged leaves the clock to them', () => {
  const session = welcomed(950);
  session.send(get(1));
  session.send({ type: 'REPLY_SENT', at: session.clock.now(), receiptPending: true });
  session.send(usage(2));
  session.advanceTo(10);
  session.send({ type: 'DELIVERED', at: session.clock.now(), receiptPending: true }); // the usage still awaits one
  session.advanceTo(20);
  session.send({ type: 'REPLY_SENT', at: session.clock.now(), receiptPending: true });
  session.take();
  session.advanceTo(IDLE_MS * 2);
  assert.is(session.state(), 'active, idle', 'a receipt is still awaited');
  session.send({ type: 'DELIVERED', at: session.clock.now(), receiptPending: false });
  assertIdleTimeoutAt(session, IDLE_MS * 3);
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

test('[P-28] SHUTDOWN with an answer in flight waits for REPLY_SENT', () => {
  for (const quotaUsed of [0, 2]) {
    const session = welcomed(108, { quotaUsed });
    session.send(get(1));
    session.take();
    session.send({ type: 'SHUTDOWN' });
    assert.equal(session.take(), []);
    assert.is(session.state(), quotaUsed === 0 ? 'active, answer in flight' : 'quotaExhausted, answer in flight');
    session.replySent();
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

test('[P-27] the idle timeout counts from when the WELCOME has been written, not when it was decided', () => {
  const session = startSession();
  session.send(hello(108));
  session.clock.increment(IDLE_MS * 3); // a slow history commit: the WELCOME is not out yet
  assert.is(session.state(), 'active, answer in flight');
  session.replySent();
  session.clock.increment(IDLE_MS - 1);
  assert.is(session.state(), 'active, idle');
  session.clock.increment(1);
  assertClosed(session, 'idle-timeout', true);
});

test('a stray REPLY_SENT while idle is ignored', () => {
  const session = welcomed(108);
  session.clock.increment(IDLE_MS - 1);
  session.replySent();
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
