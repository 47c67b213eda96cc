import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, SimulatedClock } from 'xstate';
import { admissionMachine, RECLAIM_SCAN_LIMIT } from '../machines/admission.machine.ts';
import type { AdmissionEffect, SessionActorRef } from '../machines/admission.types.ts';
import type { HelloEvent, SessionEffect } from '../machines/session.types.ts';
import { DEFAULT_TIER_TABLE, type TierTable } from '../machines/tiers.ts';

const HANDSHAKE_MS = 5_000;
const RETRY_AFTER_MS = 1_000;

function startAdmission(
  capacity: number,
  tiers: TierTable = DEFAULT_TIER_TABLE,
  bounds: { maxHandshakes?: number; maxHandshakesPerAddress?: number; reclaimIdleAfterMs?: number } = {},
) {
  const clock = new SimulatedClock();
  const sessionInput = {
    supportedVersions: [1],
    tiers,
    handshakeTimeoutMs: HANDSHAKE_MS,
    idleTimeoutMs: 300_000,
  };
  const actor = createActor(admissionMachine, {
    input: { capacity, retryAfterMs: RETRY_AFTER_MS, sessionInput, clock, ...bounds },
    clock,
  });
  const effects: AdmissionEffect[] = [];
  const sessions = new Map<number, SessionActorRef>();
  actor.on('*', (effect) => {
    effects.push(effect);
    if (effect.type === 'admitted') sessions.set(effect.connection, effect.session);
  });
  actor.start();
  let next = 1;
  return {
    actor,
    clock,
    /** CONNECT a new connection number and, as its HELLO would, claim a slot for it [P-43]; returns it. */
    connect: (address = '127.0.0.1') => {
      const connection = next++;
      actor.send({ type: 'CONNECT', connection, address, at: clock.now() });
      actor.send({ type: 'CLAIM_SLOT', connection, at: clock.now() });
      return connection;
    },
    /** CONNECT, and send nothing: a socket in its handshake [P-43]. */
    connectSilent: (address = '127.0.0.1') => {
      const connection = next++;
      actor.send({ type: 'CONNECT', connection, address, at: clock.now() });
      return connection;
    },
    take: () => effects.splice(0),
    session: (connection: number) => {
      const session = sessions.get(connection);
      if (session === undefined) throw new Error(`connection ${connection} was not admitted`);
      return session;
    },
    open: () => actor.getSnapshot().context.open,
    handshakes: () => actor.getSnapshot().context.handshakes,
    registry: () => actor.getSnapshot().context.sessions,
  };
}

const hello = (code = 108): HelloEvent => ({ type: 'HELLO', versions: [1], identity: { name: 'c', code } });

test('[P-9] [P-13] capacity 3 admits 3 and rejects the 4th with occupancy 3/3 and retryAfterMs', () => {
  const admission = startAdmission(3);
  const connections = [admission.connect(), admission.connect(), admission.connect()];
  const admitted = admission.take();
  assert.equal(
    admitted.map((effect) => [effect.type, effect.type === 'admitted' && effect.connection]),
    connections.map((connection) => ['admitted', connection]),
  );
  assert.is(admission.open(), 3);

  admission.connect();
  assert.equal(admission.take(), [
    {
      type: 'rejected',
      connection: 4,
      reason: 'server-full',
      occupancy: { open: 3, capacity: 3 },
      retryAfterMs: RETRY_AFTER_MS,
    },
  ]);
  assert.is(admission.open(), 3);
  assert.is(admission.registry().size, 3);
});

test('admitted is delivered inside send(CONNECT) with a started session, which the glue can drive at once', () => {
  const admission = startAdmission(1);
  const received: SessionEffect[] = [];
  admission.actor.on('admitted', ({ session }) => {
    assert.is(session.getSnapshot().status, 'active');
    assert.is(session.getSnapshot().value, 'handshake');
    session.on('*', (effect) => received.push(effect));
    session.send(hello());
  });
  admission.connect();
  // Synchronous: by the time send() returns, the glue has subscribed and the HELLO was answered.
  assert.equal(
    received.map((effect) => effect.type),
    ['welcome'],
  );
});

test('the sessions run on the injected clock: a handshake timeout ends the session and frees its slot', () => {
  const admission = startAdmission(2);
  admission.connect();
  admission.connect();
  admission.session(2).send(hello());
  admission.clock.increment(HANDSHAKE_MS);
  assert.is(admission.session(1).getSnapshot().status, 'done');
  assert.is(admission.open(), 1);
  assert.equal([...admission.registry().keys()], [2]);
});

test('ending a session frees its slot for the next connection', () => {
  const admission = startAdmission(3);
  admission.connect();
  admission.connect();
  admission.connect();
  admission.take();
  admission.session(2).send({ type: 'PEER_CLOSED', reason: 'client-closed' });
  assert.is(admission.open(), 2);
  assert.ok(!admission.registry().has(2));

  const next = admission.connect();
  assert.equal(admission.take()[0]?.type, 'admitted');
  assert.is(admission.open(), 3);
  assert.ok(admission.registry().has(next));
});

test('ending twice does not free twice; ending an unknown connection does nothing', () => {
  const admission = startAdmission(3);
  admission.connect();
  admission.connect();
  admission.session(1).send({ type: 'PEER_CLOSED', reason: 'client-closed' });
  assert.is(admission.open(), 1);
  admission.actor.send({ type: 'SESSION_ENDED', connection: 1 });
  admission.actor.send({ type: 'SESSION_ENDED', connection: 1 });
  admission.actor.send({ type: 'SESSION_ENDED', connection: 99 });
  assert.is(admission.open(), 1);
  assert.is(admission.registry().size, 1);
});

test('a session actor that is stopped, or that fails, also frees its slot', () => {
  // An empty tier table makes tierForCode throw inside the session: the actor errors.
  const admission = startAdmission(3, []);
  admission.connect();
  admission.connect();
  admission.session(1).stop();
  assert.is(admission.open(), 1);
  admission.session(2).send(hello());
  assert.is(admission.session(2).getSnapshot().status, 'error');
  assert.is(admission.open(), 0);
  assert.is(admission.registry().size, 0);
});

test('50 CONNECTs in a row against capacity 3: exactly 3 admitted, 47 rejected', () => {
  const admission = startAdmission(3);
  for (let i = 0; i < 50; i++) admission.connect();
  const effects = admission.take();
  const admitted = effects.filter((effect) => effect.type === 'admitted');
  const rejected = effects.filter((effect) => effect.type === 'rejected');
  assert.is(admitted.length, 3);
  assert.is(rejected.length, 47);
  for (const effect of rejected) {
    assert.equal(effect.type === 'rejected' && effect.occupancy, { open: 3, capacity: 3 });
  }
  assert.is(admission.open(), 3);
});

test('[P-28] SHUTDOWN drains: idle sessions close at once, a busy one after its answer, then stopped', () => {
  const admission = startAdmission(5);
  const inHandshake = admission.connect();
  const idle = admission.connect();
  const busy = admission.connect();
  admission.session(idle).send(hello());
  admission.session(idle).send({ type: 'REPLY_SENT', at: admission.clock.now() }); // its WELCOME is written
  admission.session(busy).send(hello());
  admission.session(busy).send({ type: 'REPLY_SENT', at: admission.clock.now() });
  admission.session(busy).send({ type: 'REQUEST', request: { id: 1, command: 'list' } });
  const closedBy: Record<number, SessionEffect[]> = {};
  for (const connection of [inHandshake, idle, busy]) {
    const effects: SessionEffect[] = [];
    closedBy[connection] = effects;
    admission.session(connection).on('*', (effect) => effects.push(effect));
  }
  admission.take();

  admission.actor.send({ type: 'SHUTDOWN' });
  assert.equal(closedBy[inHandshake]?.[0], { type: 'reject', reason: 'shutting-down' });
  assert.equal(closedBy[idle]?.[0], { type: 'notice', kind: 'shutting-down' });
  assert.equal(closedBy[busy], []);
  assert.is(admission.actor.getSnapshot().value, 'draining');
  assert.is(admission.open(), 1);

  admission.connect();
  assert.equal(admission.take(), [
    {
      type: 'rejected',
      connection: 4,
      reason: 'shutting-down',
      occupancy: { open: 1, capacity: 5 },
      retryAfterMs: RETRY_AFTER_MS,
    },
  ]);

  admission.session(busy).send({ type: 'REPLY_SENT', at: admission.clock.now() });
  assert.equal(closedBy[busy]?.[0], { type: 'notice', kind: 'shutting-down' });
  assert.equal(admission.take(), [{ type: 'drained' }]);
  assert.is(admission.actor.getSnapshot().value, 'stopped');
  assert.is(admission.actor.getSnapshot().status, 'done');
  assert.is(admission.open(), 0);
});

test('[P-28] SHUTDOWN with no open session stops at once', () => {
  const admission = startAdmission(3);
  admission.actor.send({ type: 'SHUTDOWN' });
  assert.equal(admission.take(), [{ type: 'drained' }]);
  assert.is(admission.actor.getSnapshot().status, 'done');
});

test('[P-43] sockets in their handshake hold no session slot: three silent ones, then a client gets in at once', () => {
  const admission = startAdmission(3);
  for (let i = 0; i < 3; i++) admission.connectSilent();
  assert.is(admission.handshakes(), 3);
  assert.is(admission.open(), 0, 'occupancy.open counts admitted sessions only');
  const client = admission.connect();
  assert.is(admission.take().at(-1)?.type, 'admitted');
  admission.session(client).send(hello());
  assert.equal([admission.open(), admission.handshakes()], [1, 3]);
  admission.clock.increment(HANDSHAKE_MS); // the silent ones time out; the admitted one does not
  assert.equal([admission.open(), admission.handshakes()], [1, 0]);
});

test('[P-43] handshakes in progress are bounded in all and per address: REJECT too-many-handshakes', () => {
  const admission = startAdmission(3, DEFAULT_TIER_TABLE, { maxHandshakes: 3, maxHandshakesPerAddress: 2 });
  admission.connectSilent('10.0.0.1');
  admission.connectSilent('10.0.0.1');
  admission.take();
  admission.connectSilent('10.0.0.1');
  assert.equal(admission.take(), [
    {
      type: 'rejected',
      connection: 3,
      reason: 'too-many-handshakes',
      occupancy: { open: 0, capacity: 3 },
      retryAfterMs: RETRY_AFTER_MS,
    },
  ]);
  admission.connectSilent('10.0.0.2');
  assert.is(admission.take()[0]?.type, 'admitted', 'another address still gets in');
  // From an address holding one less than the most, nobody's place is taken (see the test of displacement below).
  admission.connectSilent('10.0.0.2');
  assert.is(admission.take()[0]?.type === 'rejected' && 'too-many-handshakes', 'too-many-handshakes', 'bound in all');
  // A HELLO moves a connection out of the handshake count: its address has room again.
  admission.actor.send({ type: 'CLAIM_SLOT', connection: 1 });
  admission.connectSilent('10.0.0.1');
  assert.is(admission.take()[0]?.type, 'admitted');
  assert.equal(Object.fromEntries(admission.actor.getSnapshot().context.handshakesByAddress), {
    '10.0.0.1': 2,
    '10.0.0.2': 1,
  });
});

test('[P-43] a full handshake pool from 4 addresses: a 5th address takes the place of the oldest of a top one', () => {
  const admission = startAdmission(100, DEFAULT_TIER_TABLE, { maxHandshakes: 64, maxHandshakesPerAddress: 16 });
  const attackers = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
  const first = new Map<string, number>();
  for (const address of attackers) {
    for (let i = 0; i < 16; i++) {
      const connection = admission.connectSilent(address);
      if (!first.has(address)) first.set(address, connection);
    }
  }
  assert.ok(admission.take().every((effect) => effect.type === 'admitted'));
  assert.is(admission.handshakes(), 64);
  // An address at its own bound is refused, as before: it displaces no one.
  admission.connectSilent('127.0.0.2');
  assert.equal(
    admission.take().map((effect) => effect.type === 'rejected' && effect.reason),
    ['too-many-handshakes'],
  );
  const oldest = first.get('127.0.0.2') ?? 0;
  const evicted = admission.session(oldest);
  const newcomer = admission.connectSilent('127.0.0.1');
  assert.equal(admission.take().slice(0, 1), [
    { type: 'displaced', connection: oldest, occupancy: { open: 0, capacity: 100 }, retryAfterMs: RETRY_AFTER_MS },
  ]);
  assert.is(admission.session(newcomer).getSnapshot().value, 'handshake', 'the newcomer is in, in the same event');
  assert.not.ok(admission.registry().has(oldest), 'the displaced one has left the registry');
  assert.is(admission.handshakes(), 64);
  const byAddress = () => Object.fromEntries(admission.actor.getSnapshot().context.handshakesByAddress);
  assert.equal(byAddress(), { '127.0.0.2': 15, '127.0.0.3': 16, '127.0.0.4': 16, '127.0.0.5': 16, '127.0.0.1': 1 });
  // Its session, still running, ends as the glue ends it: its SESSION_ENDED frees nothing a second time.
  evicted.send({ type: 'PEER_CLOSED', reason: 'too-many-handshakes' });
  assert.is(evicted.getSnapshot().status, 'done');
  assert.equal([admission.open(), admission.handshakes(), admission.registry().size], [0, 64, 64]);
  // The next newcomers take the oldest place of whichever address holds the most; the counts stay exact.
  for (const address of ['127.0.0.6', '127.0.0.7', '127.0.0.8']) admission.connectSilent(address);
  const displaced = admission.take().filter((effect) => effect.type === 'displaced');
  assert.equal(
    displaced.map((effect) => effect.connection),
    [first.get('127.0.0.3'), first.get('127.0.0.4'), first.get('127.0.0.5')],
  );
  assert.is(admission.handshakes(), 64);
  const counts = Object.values(byAddress()) as number[];
  assert.is(
    counts.reduce((sum, count) => sum + count, 0),
    64,
  );
  assert.is([...admission.registry().values()].filter((entry) => !entry.admitted).length, 64);
  // The newcomer's HELLO claims a slot as any other's does.
  admission.actor.send({ type: 'CLAIM_SLOT', connection: newcomer });
  assert.equal([admission.open(), admission.handshakes()], [1, 63]);
});

test('[P-43] a pool filled evenly, one handshake an address, refuses the next as before: nobody holds 2 more', () => {
  const admission = startAdmission(100, DEFAULT_TIER_TABLE, { maxHandshakes: 8, maxHandshakesPerAddress: 4 });
  for (let i = 1; i <= 8; i++) admission.connectSilent(`10.0.0.${i}`);
  admission.take();
  admission.connectSilent('10.0.0.9');
  assert.equal(
    admission.take().map((effect) => effect.type === 'rejected' && effect.reason),
    ['too-many-handshakes'],
  );
  assert.equal([admission.handshakes(), admission.registry().size], [8, 8]);
});

test('[P-43] a HELLO that finds every slot taken is refused server-full; its handshake ends', () => {
  const admission = startAdmission(1);
  const waiting = admission.connectSilent();
  admission.connect();
  admission.take();
  admission.actor.send({ type: 'CLAIM_SLOT', connection: waiting });
  assert.equal(admission.take(), [
    { type: 'slot-refused', connection: waiting, occupancy: { open: 1, capacity: 1 }, retryAfterMs: RETRY_AFTER_MS },
  ]);
  admission.session(waiting).send({ type: 'PEER_CLOSED', reason: 'server-full' });
  assert.equal([admission.open(), admission.handshakes()], [1, 0]);
});

test('[P-44] a client turned away for capacity reclaims a session idle past the threshold; its retry gets in', () => {
  const admission = startAdmission(2, DEFAULT_TIER_TABLE, { reclaimIdleAfterMs: 1_000 });
  const idle = admission.connect();
  const busy = admission.connect();
  for (const connection of [idle, busy]) {
    admission.session(connection).send(hello());
    admission.session(connection).send({ type: 'REPLY_SENT', at: admission.clock.now() }); // WELCOME written at 0
  }
  admission.session(busy).send({ type: 'REQUEST', request: { id: 1, command: 'list' } }); // in flight
  const closedBy: SessionEffect[] = [];
  admission.session(idle).on('*', (effect) => closedBy.push(effect));
  admission.take();

  admission.clock.increment(999);
  admission.connect();
  assert.equal(admission.take()[0], {
    type: 'rejected',
    connection: 3,
    reason: 'server-full',
    occupancy: { open: 2, capacity: 2 },
    retryAfterMs: RETRY_AFTER_MS,
  });
  assert.equal(closedBy, [], 'idle for 999 ms only: kept');

  admission.clock.increment(1);
  admission.connect();
  assert.equal(admission.take()[0], {
    type: 'rejected',
    connection: 4,
    reason: 'server-full',
    occupancy: { open: 2, capacity: 2 },
    retryAfterMs: 0,
  });
  assert.equal(closedBy, [
    { type: 'notice', kind: 'idle-timeout' },
    { type: 'closed', reason: 'idle-reclaimed', admitted: true },
  ]);
  assert.is(admission.session(busy).getSnapshot().status, 'active', 'the busy session is not reclaimed');
  assert.is(admission.open(), 1);
  const retry = admission.connect();
  assert.is(admission.take()[0]?.type, 'admitted');
  assert.is(admission.session(retry).getSnapshot().status, 'active');
  assert.is(admission.open(), 2);
});

test('[P-44] the scan for an idle session is bounded, and the next scan goes on where it stopped', () => {
  const capacity = RECLAIM_SCAN_LIMIT + 6;
  const admission = startAdmission(capacity, DEFAULT_TIER_TABLE, { reclaimIdleAfterMs: 0 });
  const connections = Array.from({ length: capacity }, () => admission.connect());
  for (const [index, connection] of connections.entries()) {
    const session = admission.session(connection);
    session.send(hello());
    session.send({ type: 'REPLY_SENT', at: admission.clock.now() });
    // Every session is busy but the last one.
    if (index < capacity - 1) session.send({ type: 'REQUEST', request: { id: 1, command: 'list' } });
  }
  admission.take();
  admission.connect();
  const first = admission.take()[0];
  assert.is(first?.type === 'rejected' && first.retryAfterMs, RETRY_AFTER_MS, 'not within the first scan');
  admission.connect();
  const second = admission.take()[0];
  assert.is(second?.type === 'rejected' && second.retryAfterMs, 0, 'found by the next scan');
  assert.is(admission.session(connections.at(-1) as number).getSnapshot().status, 'done');
});

test('admission is O(1): 2,000 sessions in a Map, no children on the admission actor', () => {
  const admission = startAdmission(10_000);
  for (let i = 0; i < 2_000; i++) admission.connect();
  const effects = admission.take();
  assert.is(effects.length, 2_000);
  assert.ok(effects.every((effect) => effect.type === 'admitted'));
  assert.is(admission.open(), 2_000);
  assert.is(admission.registry().size, 2_000);
  assert.equal(Object.keys(admission.actor.getSnapshot().children), []);
});

test.run();
