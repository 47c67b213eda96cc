/** [P-48] [P-49] The pure parts of the free-request bound: the token bucket, what is free, and what repeats. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor } from 'xstate';
import type { NewEvent } from '../db/events.ts';
import { sessionMachine } from '../machines/session.machine.ts';
import type { SessionEffect, SessionInput } from '../machines/session.types.ts';
import { DEFAULT_TIER_TABLE } from '../machines/tiers.ts';
import { costsNoQuota, fullBudget, spendFreeRequest } from '../src/server/free-request-budget.ts';
import { aggregateRepeat } from '../src/server/repeated-answers.ts';

const options = { burst: 3, perSecond: 2 };

test('[P-48] a full bucket serves its burst at once, then refuses with the time until the next token', () => {
  let state = fullBudget(options, 1000);
  for (let index = 0; index < 3; index++) {
    const decision = spendFreeRequest(state, options, 1000);
    assert.ok(decision.allowed);
    state = decision.state;
  }
  const refused = spendFreeRequest(state, options, 1000);
  assert.is(refused.allowed, false);
  assert.is(refused.allowed === false && refused.retryAfterMs, 500);
  // A refusal takes nothing: after the hint, one request is served.
  const later = spendFreeRequest(refused.state, options, 1500);
  assert.ok(later.allowed);
  // Tokens never exceed the burst, however long the session waited.
  const rested = spendFreeRequest(later.state, options, 1_000_000);
  assert.ok(rested.allowed);
  assert.is(rested.state.tokens, 2);
});

test('[P-48] the clock going backwards gives no tokens and takes none', () => {
  const state = { tokens: 0.5, at: 2000 };
  const decision = spendFreeRequest(state, options, 1000);
  assert.is(decision.allowed, false);
  assert.is(decision.state.tokens, 0.5);
});

test('[P-48] only a get answered with bytes, and exit, cost no budget', () => {
  assert.is(costsNoQuota('get', true, false), false);
  assert.is(costsNoQuota('exit', false, false), false);
  assert.is(costsNoQuota('get', true, true), true);
  assert.is(costsNoQuota('get', false, false), true);
  assert.is(costsNoQuota('list', false, false), true);
  assert.is(costsNoQuota('usage', false, false), true);
});

const refusal = (requestId: number, image: string, code = 'image-not-found'): NewEvent => ({
  session: 4,
  type: 'request-refused',
  data: { requestId, command: 'get', code, reason: `no image named '${image}'`, image },
});

test('[P-49] the same refusal as the last row becomes a repeat of it; another refusal, or a not-modified, does not', () => {
  const first = aggregateRepeat([refusal(1, 'a.png')], null);
  assert.is(first.events[0]?.type, 'request-refused');
  const second = aggregateRepeat([refusal(2, 'a.png')], first.key);
  assert.equal(second.events, [{ type: 'answer-repeated', session: 4, data: { requestId: 2, count: 'repeats' } }]);
  assert.is(aggregateRepeat([refusal(3, 'b.png')], second.key).events[0]?.type, 'request-refused');
  const served: NewEvent = {
    session: 4,
    type: 'image-not-modified',
    data: { requestId: 5, image: 'a.png', sha256: 'f'.repeat(64) },
  };
  assert.is(aggregateRepeat([served], first.key).key, null);
});

test('[P-49] a rate-limited refusal is counted on the row before it, which stays the last: repeats go on across it', () => {
  const first = aggregateRepeat([refusal(1, 'a.png')], null);
  const limited = aggregateRepeat([refusal(2, 'x.png', 'rate-limited')], first.key);
  assert.equal(limited.events, [{ type: 'answer-repeated', session: 4, data: { requestId: 2, count: 'rateLimited' } }]);
  assert.is(limited.key, first.key);
  assert.is(aggregateRepeat([refusal(3, 'a.png')], limited.key).events[0]?.type, 'answer-repeated');
  assert.is(aggregateRepeat([refusal(4, 'x.png', 'rate-limited')], null).events[0]?.type, 'answer-repeated');
});

test('[P-48] the session machine refuses a request over the budget, not fatal, and goes on; exit still works', () => {
  const input: SessionInput = {
    connection: 1,
    supportedVersions: [1],
    tiers: DEFAULT_TIER_TABLE,
    handshakeTimeoutMs: 5_000,
    idleTimeoutMs: 300_000,
  };
  const actor = createActor(sessionMachine, { input });
  const effects: SessionEffect[] = [];
  actor.on('*', (effect) => effects.push(effect));
  actor.start();
  actor.send({ type: 'HELLO', versions: [1], identity: { name: 'client-1', code: 108 } });
  actor.send({ type: 'REPLY_SENT', at: 1 });
  actor.send({ type: 'REQUEST', request: { id: 1, command: 'list' }, overBudget: true });
  const refused = effects.at(-1);
  assert.is(refused?.type, 'refuse');
  assert.is(refused?.type === 'refuse' && refused.code, 'rate-limited');
  assert.is(refused?.type === 'refuse' && refused.fatal, false);
  assert.is(refused?.type === 'refuse' && refused.command, 'list');
  actor.send({ type: 'REPLY_SENT', at: 2 });
  actor.send({ type: 'REQUEST', request: { id: 2, command: 'list' } });
  assert.is(effects.at(-1)?.type, 'serve-list');
  actor.send({ type: 'REPLY_SENT', at: 3 });
  actor.send({ type: 'REQUEST', request: { id: 3, command: 'exit' } });
  assert.equal(
    effects.slice(-2).map((effect) => effect.type),
    ['acknowledge-exit', 'closed'],
  );
  actor.stop();
});

test.run();
