/**
 * The machines' part in identities, without sockets: the session takes a granted identity and quota [P-68] [P-64],
 * follows its identity's quota from request to request (QUOTA), and closes when revoked [P-66]; admission bounds the
 * sessions of one identity [P-65] and closes a revoked identity's sessions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, SimulatedClock } from 'xstate';
import { admissionMachine } from '../machines/admission.machine.ts';
import type { AdmissionEffect } from '../machines/admission.types.ts';
import { sessionMachine } from '../machines/session.machine.ts';
import type { SessionEffect, SessionEvent } from '../machines/session.types.ts';
import { DEFAULT_TIER_TABLE } from '../machines/tiers.ts';
import type { Quota, Request } from '../src/protocol/messages.ts';

const INPUT = {
  supportedVersions: [1],
  tiers: DEFAULT_TIER_TABLE,
  handshakeTimeoutMs: 5_000,
  idleTimeoutMs: 300_000,
};
const ALICE = { name: 'client-1', code: 912, tier: 'platinum', canReadUsage: true, identity: 'alice' };

function daily(used: number, limit = 2, resetsAt = '2026-11-29T00:00:00.000Z'): Quota {
  return { limit, used, remaining: Math.max(0, limit - used), period: 'day', resetsAt };
}

/** The HELLO of a keyed client whose key the glue checked: alice's identity, granted with `quota`. */
function grantedHello(quota: Quota): SessionEvent {
  return { type: 'HELLO', versions: [1], identity: { name: 'client-1', code: 912 }, grant: { identity: ALICE, quota } };
}

function startSession() {
  const clock = new SimulatedClock();
  const actor = createActor(sessionMachine, { input: { ...INPUT, connection: 1 }, clock });
  const effects: SessionEffect[] = [];
  actor.on('*', (effect) => effects.push(effect));
  actor.start();
  const send = (event: SessionEvent) => actor.send(event);
  return {
    actor,
    send,
    take: () => effects.splice(0),
    answered: () => send({ type: 'REPLY_SENT', at: clock.now() }),
    get: (id: number, quota?: Quota) => {
      if (quota) send({ type: 'QUOTA', quota });
      const request: Request = { id, command: 'get', image: 'a.png' };
      send({ type: 'REQUEST', request, imageExists: true });
    },
    state: () => String(actor.getSnapshot().value),
  };
}

test('[P-68] [P-64] a granted HELLO: the WELCOME carries the identity and the quota as granted', () => {
  const session = startSession();
  session.send(grantedHello(daily(1)));
  assert.equal(session.take(), [{ type: 'welcome', version: 1, identity: ALICE, quota: daily(1) }]);
  assert.is(session.state(), 'active');
  const used = startSession();
  used.send(grantedHello(daily(2)));
  assert.is(used.state(), 'quotaExhausted', 'a quota already used up elsewhere');
});

test("[P-64] the identity's quota decides each get: used elsewhere, renewed by a new period", () => {
  const session = startSession();
  session.send(grantedHello(daily(0)));
  session.take();
  session.answered();
  session.get(1, daily(0));
  assert.equal(session.take(), [{ type: 'serve-image', requestId: 1, image: 'a.png', quota: daily(1) }]);
  session.answered();
  // another session of alice took the last image meanwhile: refused, though this session is still in active
  session.get(2, daily(2));
  const [refusal] = session.take();
  assert.equal([refusal?.type, refusal?.type === 'refuse' && refusal.code], ['refuse', 'quota-exhausted']);
  assert.is(session.state(), 'closed');

  const renewed = startSession();
  renewed.send(grantedHello(daily(2)));
  renewed.answered();
  renewed.take();
  assert.is(renewed.state(), 'quotaExhausted');
  const next = '2026-11-30T00:00:00.000Z';
  renewed.get(3, daily(0, 2, next)); // the day turned
  assert.equal(renewed.take(), [{ type: 'serve-image', requestId: 3, image: 'a.png', quota: daily(1, 2, next) }]);
  assert.is(renewed.state(), 'active');
  renewed.answered();
  renewed.get(4, daily(1, 2, next));
  assert.is(renewed.take()[0]?.type, 'serve-image');
  assert.is(renewed.state(), 'quotaExhausted', 'the last image of the new day');
});

test('[P-66] REVOKE closes at once when idle, after the answer in flight otherwise, with NOTICE revoked', () => {
  const idle = startSession();
  idle.send(grantedHello(daily(0)));
  idle.answered();
  idle.take();
  idle.send({ type: 'REVOKE' });
  assert.equal(idle.take(), [
    { type: 'notice', kind: 'revoked' },
    { type: 'closed', reason: 'identity-revoked', admitted: true },
  ]);
  const busy = startSession();
  busy.send(grantedHello(daily(0)));
  busy.answered();
  busy.get(1);
  busy.take();
  busy.send({ type: 'REVOKE' });
  assert.equal(busy.take(), [], 'the image in flight goes out first');
  busy.answered();
  assert.equal(busy.take(), [
    { type: 'notice', kind: 'revoked' },
    { type: 'closed', reason: 'identity-revoked', admitted: true },
  ]);
});

test("[P-65] admission bounds the sessions of one identity; [P-66] a revoked identity's sessions are closed", () => {
  const actor = createActor(admissionMachine, {
    input: { capacity: 5, retryAfterMs: 1_000, maxSessionsPerIdentity: 1, sessionInput: INPUT },
  });
  const effects: AdmissionEffect[] = [];
  actor.on('*', (effect) => effects.push(effect));
  actor.start();
  const claim = (connection: number, identity?: string) => {
    actor.send({ type: 'CONNECT', connection, address: '127.0.0.1', at: 0 });
    actor.send({ type: 'CLAIM_SLOT', connection, at: 0, ...(identity ? { identity } : {}) });
  };
  claim(1, 'alice');
  claim(2, 'alice');
  claim(3, 'bob');
  claim(4);
  const refused = effects.filter((effect) => effect.type === 'slot-refused');
  assert.equal(refused, [
    {
      type: 'slot-refused',
      connection: 2,
      occupancy: { open: 1, capacity: 5 },
      retryAfterMs: 1_000,
      reason: 'too-many-sessions',
    },
  ]);
  const context = actor.getSnapshot().context;
  assert.equal(
    [context.open, [...context.sessionsByIdentity]],
    [
      3,
      [
        ['alice', 1],
        ['bob', 1],
      ],
    ],
  );
  const alice = effects.find((effect) => effect.type === 'admitted' && effect.connection === 1);
  const session = alice?.type === 'admitted' ? alice.session : undefined;
  session?.send(grantedHello(daily(0)));
  session?.send({ type: 'REPLY_SENT', at: 0 });
  actor.send({ type: 'REVOKE_IDENTITY', identity: 'alice' });
  assert.is(session?.getSnapshot().status, 'done');
  assert.equal(actor.getSnapshot().context.sessionsByIdentity.get('alice'), undefined, 'its slot is free again');
  claim(5, 'alice');
  assert.is(actor.getSnapshot().context.sessionsByIdentity.get('alice'), 1);
  actor.stop();
});

test.run();
