/**
 * One client session, from the HELLO to the close: it decides, the socket glue acts. The glue sends the events of
 * session.types.ts and carries out the emitted SessionEffects (`session.on(type, handler)`), in order.
 *
 *   handshake ──HELLO──▶ active ──last image served──▶ quotaExhausted
 *       │                  │                               │
 *       └──────────────────┴──────────────▶ closed ◀───────┘   (final; output { reason, admitted })
 *
 * An answer is in flight (`context.answerInFlight`) from the WELCOME, a REQUEST or an INVALID_REQUEST until the
 * glue's REPLY_SENT; a request is a transition that stays in its state, so serving one schedules no timer. The glue
 * never sends a REQUEST while an answer is in flight ([P-16]: it queues pipelined requests) nor before the WELCOME;
 * such an event would be ignored.
 *
 * The idle timeout [P-27] is one `after` delay on active and on quotaExhausted, the idle check. REPLY_SENT carries
 * when the answer was written (`at`), the only time the machine is told. When the check falls due with no answer in
 * flight and idleTimeoutMs gone by since the last answer was written, the session is closed; otherwise the check is
 * re-armed (the state re-entered) for the time left, taking the time it fell due as "now": timers fire late, never
 * early, so that never closes a session early. A check re-armed that way, or armed while an answer is in flight (on
 * entering the state, or when it falls due then), is armed again by the next REPLY_SENT, from its `at`, exactly; a
 * check armed by a REPLY_SENT is left alone by the next ones. So a request arms no timer, a busy session arms about
 * two per idleTimeoutMs, and the timeout falls idleTimeoutMs after the last answer, late only as much as a timer
 * fired late.
 *
 * Receipts [P-40]: REPLY_SENT says whether a stream still awaits its RECEIVED (`receiptPending`), and the glue sends
 * DELIVERED (with its own `at`) for each RECEIVED. While a receipt is awaited the session is not idle (the drain
 * deadline [P-41] watches the reader, in the glue); the idle time then counts from the last DELIVERED. A check that
 * falls due meanwhile is armed as in flight, and the DELIVERED that ends the wait re-arms it from its `at`.
 *
 * RECLAIM [P-44] comes from admission when a client is turned away for capacity: the session closes, with the idle
 * timeout's NOTICE, if it has been idle for the time asked; it ignores the event otherwise.
 *
 * Effects are delivered synchronously, during `send`, after the transition is taken. An event the glue sends from
 * inside an effect handler is queued and handled right after the current one. The machine emits nothing at start.
 */
import { and, assertEvent, assign, emit, enqueueActions, not, setup } from 'xstate';
import {
  type Command,
  type ErrorCode,
  FATAL_ERROR_CODES,
  type NoticeKind,
  type Quota,
  type SessionIdentity,
} from '../src/protocol/messages.ts';
import type {
  HandshakeRejectReason,
  RequestEvent,
  SessionContext,
  SessionEffect,
  SessionEvent,
  SessionInput,
  SessionOutput,
} from './session.types.ts';
import { tierForCode } from './tiers.ts';

/** [P-10] The highest version both sides speak, or undefined. */
function highestCommonVersion(ours: readonly number[], theirs: readonly number[]): number | undefined {
  const common = theirs.filter((version) => ours.includes(version));
  return common.length === 0 ? undefined : Math.max(...common);
}

/**
 * `period` and `resetsAt` [P-64], when the quota has them, are kept from `like`. One object literal, not a spread of
 * one: a keyed get builds one, and `{ ...quota, period, resetsAt }` cost it about 1 µs.
 */
function quotaOf(limit: number, used: number, like?: Quota): Quota {
  const remaining = Math.max(0, limit - used);
  if (like?.period === undefined) return { limit, used, remaining };
  return { limit, used, remaining, period: like.period, resetsAt: like.resetsAt ?? null };
}

/**
 * [P-64] Whether two quotas say the same, field for field (a `resetsAt` of null is not an absent one: the frames
 * would differ). The glue tells a keyed session its quota only when it is not the one the session has.
 */
export function sameQuota(a: Quota, b: Quota): boolean {
  return (
    a.limit === b.limit &&
    a.used === b.used &&
    a.remaining === b.remaining &&
    a.period === b.period &&
    a.resetsAt === b.resetsAt
  );
}

function commandOf(event: SessionEvent): Command | undefined {
  return event.type === 'REQUEST' ? event.request.command : undefined;
}

function imageOf(event: RequestEvent): string {
  return event.request.command === 'get' ? event.request.image : '';
}

/**
 * [P-19] [P-34] A get to be answered with the image's bytes: the image exists and the client does not hold its
 * current hash. The most frequent request, so it is the first guard tried; one function, not a composition of guards.
 */
function isTransfer(context: SessionContext, event: SessionEvent): boolean {
  return (
    !context.answerInFlight &&
    event.type === 'REQUEST' &&
    event.request.command === 'get' &&
    event.imageExists === true &&
    event.imageUnchanged !== true
  );
}

/** Set by the WELCOME; every state after handshake has one. */
function identityOf(context: SessionContext): SessionIdentity {
  if (context.identity === null) throw new Error('session: no identity before the WELCOME');
  return context.identity;
}

/** [P-26] The refusal of a parsed request; fatal per FATAL_ERROR_CODES (of these, quota-exhausted only). */
function refusal(event: RequestEvent, quota: Quota, code: ErrorCode, message: string): SessionEffect {
  const { id: requestId, command } = event.request;
  const image = command === 'get' ? { image: imageOf(event) } : {};
  return { type: 'refuse', requestId, code, message, fatal: FATAL_ERROR_CODES.has(code), quota, command, ...image };
}

function outputOf(context: SessionContext): SessionOutput {
  return { reason: context.closeReason, admitted: context.identity !== null };
}

type IdleCheck = Pick<SessionContext, 'idleCheckDueAt' | 'idleCheckDelayMs' | 'idleCheckArmedByAnswer'>;

/** [P-27] An idle check armed while an answer is in flight, at a time the machine does not know. */
function idleCheckInFlight(context: SessionContext): IdleCheck {
  return { idleCheckDueAt: null, idleCheckDelayMs: context.settings.idleTimeoutMs, idleCheckArmedByAnswer: false };
}

/** [P-27] The idle check armed by the end of an answer, at `at`: exact. */
function idleCheckFromAnswerEnd(context: SessionContext, at: number): IdleCheck {
  const delayMs = context.settings.idleTimeoutMs;
  return { idleCheckDueAt: at + delayMs, idleCheckDelayMs: delayMs, idleCheckArmedByAnswer: true };
}

/**
 * [P-27] The check that follows one that fell due without closing the session. That one fell due at `idleCheckDueAt`,
 * taken as "now" (the timer may have fired later, never earlier); the next one falls due idleTimeoutMs after the end
 * of the last answer.
 */
function nextIdleCheck(context: SessionContext): IdleCheck {
  const now = context.idleCheckDueAt;
  if (context.answerInFlight || context.receiptPending || now === null) return idleCheckInFlight(context);
  const dueAt = context.lastAnswerAt + context.settings.idleTimeoutMs;
  return { idleCheckDueAt: dueAt, idleCheckDelayMs: dueAt - now, idleCheckArmedByAnswer: false };
}

const closeAs = (reason: string) => ({ type: 'closeAs', params: { reason } }) as const;

const sessionSetup = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    output: {} as SessionOutput,
    emitted: {} as SessionEffect,
  },
  delays: {
    handshakeTimeout: ({ context }) => context.settings.handshakeTimeoutMs,
    idleCheck: ({ context }) => context.idleCheckDelayMs,
  },
  guards: {
    /** [P-10] */
    sharesVersion: ({ context, event }) => {
      assertEvent(event, 'HELLO');
      return highestCommonVersion(context.settings.supportedVersions, event.versions) !== undefined;
    },
    /** [P-21] The tier of the HELLO's code leaves at least one get (or, granted [P-64], the identity's quota). */
    tierHasQuota: ({ context, event }) => {
      assertEvent(event, 'HELLO');
      if (event.grant) return event.grant.quota.remaining > 0;
      return tierForCode(event.identity.code, context.settings.tiers).quota > context.quota.used;
    },
    /** [P-19] [P-34] */
    isTransfer: ({ context, event }) => isTransfer(context, event),
    /** [P-21] A transfer that leaves at least one get: the common case, decided by this one guard. */
    isTransferWithQuotaToSpare: ({ context, event }) => isTransfer(context, event) && context.quota.remaining > 1,
    /** [P-21] [P-64] A transfer the quota allows: in active always, in quotaExhausted once a keyed quota's period turned. */
    isTransferWithQuota: ({ context, event }) => isTransfer(context, event) && context.quota.remaining > 0,
    /** [P-66] */
    revoking: ({ context }) => context.revoking,
    /** [P-16] */
    answerInFlight: ({ context }) => context.answerInFlight,
    /** [P-48] The glue found this request free and over the session's budget of free requests. */
    isOverBudget: ({ event }) => event.type === 'REQUEST' && event.overBudget === true,
    isList: ({ event }) => commandOf(event) === 'list',
    isUsage: ({ event }) => commandOf(event) === 'usage',
    isExit: ({ event }) => commandOf(event) === 'exit',
    /** [P-22] */
    canReadUsage: ({ context }) => context.identity?.canReadUsage === true,
    /** [P-21] A get of an image the catalog does not have: answered, never counted. */
    isMissingImage: ({ event }) => {
      assertEvent(event, 'REQUEST');
      return event.request.command === 'get' && event.imageExists !== true;
    },
    /** [P-34] [P-36] A get of an image whose current hash the client already holds: answered free, in any state. */
    isUnchangedImage: ({ event }) => {
      assertEvent(event, 'REQUEST');
      return event.request.command === 'get' && event.imageExists === true && event.imageUnchanged === true;
    },
    /** [P-26] */
    isFatalCode: ({ event }) => {
      assertEvent(event, 'INVALID_REQUEST');
      return FATAL_ERROR_CODES.has(event.code);
    },
    /**
     * [P-27] REPLY_SENT ends the answer in flight, the session goes on, and the idle check stays as it is: an earlier
     * REPLY_SENT armed it, from its `at`. The common case, decided by this one guard.
     */
    endsAnswer: ({ context }) => context.answerInFlight && !context.shutdownPending && context.idleCheckArmedByAnswer,
    /** [P-28] */
    shutdownPending: ({ context }) => context.shutdownPending,
    /** [P-40] */
    answerInFlightOrReceiptStillPending: ({ context, event }) => {
      assertEvent(event, 'DELIVERED');
      return context.answerInFlight || event.receiptPending;
    },
    /** [P-27] */
    idleCheckArmedByAnswer: ({ context }) => context.idleCheckArmedByAnswer,
    /** [P-44] Idle (nothing in flight, no receipt awaited, not shutting down) for at least the time asked. */
    idleLongEnough: ({ context, event }) => {
      assertEvent(event, 'RECLAIM');
      return (
        !context.answerInFlight &&
        !context.receiptPending &&
        !context.shutdownPending &&
        event.at - context.lastAnswerAt >= event.idleForMs
      );
    },
    /** [P-27] No answer in flight, and idleTimeoutMs gone by since the last one ended. */
    idleTimeoutReached: ({ context }) =>
      !context.answerInFlight &&
      !context.receiptPending &&
      context.idleCheckDueAt !== null &&
      context.idleCheckDueAt >= context.lastAnswerAt + context.settings.idleTimeoutMs,
  },
  actions: {
    /** [P-12] Resolve the tier ([P-20]), start the quota, send WELCOME: the first answer in flight. */
    welcome: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'HELLO');
      let identity: SessionIdentity;
      let quota: Quota;
      if (event.grant) {
        ({ identity, quota } = event.grant); // [P-60] [P-64] as the access control granted it
      } else {
        const range = tierForCode(event.identity.code, context.settings.tiers);
        identity = { ...event.identity, tier: range.tier, canReadUsage: range.canReadUsage };
        quota = quotaOf(range.quota, context.quota.used);
      }
      const version = highestCommonVersion(context.settings.supportedVersions, event.versions) ?? 0; // sharesVersion held
      enqueue.assign({ identity, quota, answerInFlight: true, ...idleCheckInFlight(context) });
      enqueue.emit({ type: 'welcome', version, identity, quota });
    }),
    /** [P-10] */
    rejectUnsupportedVersion: emit(({ context }) => ({
      type: 'reject',
      reason: 'unsupported-version',
      supported: [...context.settings.supportedVersions],
    })),
    /** [P-11], [P-13], [P-28] */
    reject: emit((_, params: { reason: HandshakeRejectReason }) => ({ type: 'reject', reason: params.reason })),
    /** [P-11] The first frame was not a valid HELLO, or too large ([P-3]). */
    rejectBadHello: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'INVALID_REQUEST');
      const reason = event.code === 'frame-too-large' ? 'frame-too-large' : 'bad-hello';
      enqueue.emit({ type: 'reject', reason });
      enqueue.assign({ closeReason: reason });
    }),
    /** [P-16] An answer other than a served image goes out; it is in flight until REPLY_SENT. */
    startAnswer: assign({ answerInFlight: true }),
    /** [P-18] */
    serveList: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      return { type: 'serve-list', requestId: event.request.id, identity: identityOf(context), quota: context.quota };
    }),
    /** [P-19], [P-21] Only a get answered with the image's bytes counts; the answer is in flight. */
    countImage: assign(({ context }) => ({
      quota: quotaOf(context.quota.limit, context.quota.used + 1, context.quota),
      answerInFlight: true,
    })),
    /** [P-19] After countImage: the quota already counts the image. */
    serveImage: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      return { type: 'serve-image', requestId: event.request.id, image: imageOf(event), quota: context.quota };
    }),
    /** [P-21] [P-27] The last image moves the session to quotaExhausted, whose idle check starts in flight. */
    armIdleCheckInFlight: assign(({ context }) => idleCheckInFlight(context)),
    /** [P-35] [P-36] Not modified: no bytes, nothing counted. */
    serveNotModified: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      return { type: 'serve-not-modified', requestId: event.request.id, image: imageOf(event), quota: context.quota };
    }),
    /** [P-22] */
    serveUsage: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      return { type: 'serve-usage', requestId: event.request.id, quota: context.quota };
    }),
    /** [P-23] */
    acknowledgeExit: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      return { type: 'acknowledge-exit', requestId: event.request.id, quota: context.quota };
    }),
    /** [P-22] Not fatal, costs nothing. */
    refuseUsage: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      const message = `the ${identityOf(context).tier} tier may not read usage`;
      return refusal(event, context.quota, 'usage-forbidden', message);
    }),
    /** [P-21], [P-26] Not fatal, costs nothing. */
    refuseMissingImage: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      return refusal(event, context.quota, 'image-not-found', `no image named '${imageOf(event)}'`);
    }),
    /** [P-48] Not fatal, costs nothing; the glue adds the retry hint. */
    refuseOverBudget: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      return refusal(event, context.quota, 'rate-limited', 'too many requests that cost no quota; slow down');
    }),
    /** [P-21] Fatal. */
    refuseQuotaExhausted: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      const message = `the quota of ${context.quota.limit} images is used up`;
      return refusal(event, context.quota, 'quota-exhausted', message);
    }),
    /** [P-26] Fatal per FATAL_ERROR_CODES; the glue's message is passed on. */
    refuseInvalidRequest: emit(({ context, event }) => {
      assertEvent(event, 'INVALID_REQUEST');
      const { requestId, code, message } = event;
      return { type: 'refuse', requestId, code, message, fatal: FATAL_ERROR_CODES.has(code), quota: context.quota };
    }),
    /** [P-26] history-unavailable: fatal, answers no request. */
    refuseHistoryUnavailable: emit(({ context, event }) => {
      assertEvent(event, 'HISTORY_FAILED');
      // An image whose serving could not be recorded was not sent: it does not count.
      const used = event.imageNotServed ? context.quota.used - 1 : context.quota.used;
      return {
        type: 'refuse',
        requestId: null,
        code: 'history-unavailable',
        message: 'the server cannot record this session in its history',
        fatal: true,
        quota: quotaOf(context.quota.limit, used, context.quota),
      };
    }),
    /** [P-27] The answer is written; the idle timeout counts from its end. */
    endAnswer: assign(({ event }) => {
      assertEvent(event, 'REPLY_SENT');
      return { answerInFlight: false, lastAnswerAt: event.at, receiptPending: event.receiptPending === true };
    }),
    /**
     * [P-27] The answer is written, and the idle check was armed in flight or when an earlier one fell due (from a
     * "now" that may be late): re-armed from the answer's end, exactly.
     */
    endAnswerAndArmIdleCheck: assign(({ context, event }) => {
      assertEvent(event, 'REPLY_SENT');
      const receiptPending = event.receiptPending === true;
      return {
        answerInFlight: false,
        lastAnswerAt: event.at,
        receiptPending,
        ...idleCheckFromAnswerEnd(context, event.at),
      };
    }),
    /** [P-27] [P-40] A stream was delivered: the idle timeout counts from its RECEIVED once none is awaited. */
    deliver: assign(({ event }) => {
      assertEvent(event, 'DELIVERED');
      return { lastAnswerAt: event.at, receiptPending: event.receiptPending };
    }),
    /** [P-27] [P-40] Delivered, and the idle check was armed while a receipt was awaited: re-armed from `at`. */
    deliverAndArmIdleCheck: assign(({ context, event }) => {
      assertEvent(event, 'DELIVERED');
      return { lastAnswerAt: event.at, receiptPending: false, ...idleCheckFromAnswerEnd(context, event.at) };
    }),
    /** [P-40] A RECEIVED while an answer is in flight or another stream awaits one: only the count changes. */
    noteReceipt: assign(({ event }) => {
      assertEvent(event, 'DELIVERED');
      return { receiptPending: event.receiptPending };
    }),
    /** [P-27] The idle check fell due before the session was idle for idleTimeoutMs, or in flight. */
    rearmIdleCheck: assign(({ context }) => nextIdleCheck(context)),
    /** [P-27], [P-28] A closing NOTICE. */
    notice: emit((_, params: { kind: NoticeKind }) => ({ type: 'notice', kind: params.kind })),
    /** [P-28] Shut down once the answer in flight is written. */
    rememberShutdown: assign({ shutdownPending: true }),
    /** [P-66] Close for the revocation once the answer in flight is written. */
    rememberRevocation: assign({ shutdownPending: true, revoking: true }),
    /** [P-64] A keyed session's quota as it stands now. */
    adoptQuota: assign(({ event }) => {
      assertEvent(event, 'QUOTA');
      return { quota: event.quota };
    }),
    closeAs: assign((_, params: { reason: string }) => ({ closeReason: params.reason })),
    /** [P-30] */
    emitClosed: emit(({ context }) => ({ type: 'closed', ...outputOf(context) })),
  },
});

/**
 * active and quotaExhausted: every answer but a served get costs nothing [P-21], and the idle check runs [P-27].
 * `transfer` is the one difference between the two: a get of an image the client does not hold current is served
 * in active (and the last one moves to quotaExhausted), refused in quotaExhausted; a get of an image it holds is
 * answered not-modified in both, since it transfers nothing [P-36]. Requests, and REPLY_SENT but the first one after
 * the idle check was armed in flight or fell due, are transitions without a target: no state is left or entered, so
 * no timer is armed.
 */
function sessionState(self: '#session.active' | '#session.quotaExhausted', transfer: 'serve' | 'refuse') {
  return sessionSetup.createStateConfig({
    after: {
      idleCheck: [
        {
          guard: 'idleTimeoutReached',
          target: '#session.closed',
          actions: [{ type: 'notice', params: { kind: 'idle-timeout' } }, closeAs('idle-timeout')],
        },
        { target: self, reenter: true, actions: 'rearmIdleCheck' },
      ],
    },
    on: {
      REQUEST: [
        // [P-64] A keyed quota can change under the state (QUOTA: its period turned, its tier changed, another session
        // of the identity used it): the state says where the session was, the quota decides.
        ...(transfer === 'serve'
          ? [
              { guard: 'isTransferWithQuotaToSpare', actions: ['countImage', 'serveImage'] } as const,
              {
                guard: 'isTransferWithQuota',
                target: '#session.quotaExhausted',
                actions: ['countImage', 'serveImage', 'armIdleCheckInFlight'],
              } as const,
            ]
          : [
              {
                guard: 'isTransferWithQuotaToSpare',
                target: '#session.active',
                actions: ['countImage', 'serveImage', 'armIdleCheckInFlight'],
              } as const,
              { guard: 'isTransferWithQuota', actions: ['countImage', 'serveImage'] } as const,
            ]),
        {
          guard: 'isTransfer',
          target: '#session.closed',
          actions: ['refuseQuotaExhausted', closeAs('quota-exhausted')],
        },
        { guard: 'answerInFlight' }, // [P-16] ignored
        { guard: 'isOverBudget', actions: ['startAnswer', 'refuseOverBudget'] }, // [P-48]
        { guard: 'isList', actions: ['startAnswer', 'serveList'] },
        { guard: and(['isUsage', 'canReadUsage']), actions: ['startAnswer', 'serveUsage'] },
        { guard: 'isUsage', actions: ['startAnswer', 'refuseUsage'] },
        { guard: 'isExit', target: '#session.closed', actions: ['acknowledgeExit', closeAs('client-exit')] },
        { guard: 'isMissingImage', actions: ['startAnswer', 'refuseMissingImage'] },
        { guard: 'isUnchangedImage', actions: ['startAnswer', 'serveNotModified'] },
      ],
      INVALID_REQUEST: [
        { guard: 'answerInFlight' }, // [P-16] ignored
        {
          guard: 'isFatalCode',
          target: '#session.closed',
          actions: ['refuseInvalidRequest', { type: 'closeAs', params: ({ event }) => ({ reason: event.code }) }],
        },
        { actions: ['startAnswer', 'refuseInvalidRequest'] },
      ],
      REPLY_SENT: [
        { guard: 'endsAnswer', actions: 'endAnswer' },
        /** [P-66] The revocation waited for the answer in flight. */
        {
          guard: 'revoking',
          target: '#session.closed',
          actions: [{ type: 'notice', params: { kind: 'revoked' } }, closeAs('identity-revoked')],
        },
        /** [P-28] The SHUTDOWN waited for the answer in flight. */
        {
          guard: 'shutdownPending',
          target: '#session.closed',
          actions: [{ type: 'notice', params: { kind: 'shutting-down' } }, closeAs('server-shutdown')],
        },
        { guard: 'answerInFlight', target: self, reenter: true, actions: 'endAnswerAndArmIdleCheck' },
        // A REPLY_SENT with no answer in flight is ignored.
      ],
      /**
       * [P-27] [P-40] A stream delivered. In flight or with another receipt awaited, the idle clock does not run; an
       * idle check armed by an answer's end falls due and is re-armed for the time left; one armed meanwhile is
       * re-armed from the receipt.
       */
      DELIVERED: [
        { guard: 'answerInFlightOrReceiptStillPending', actions: 'noteReceipt' },
        { guard: 'idleCheckArmedByAnswer', actions: 'deliver' },
        { target: self, reenter: true, actions: 'deliverAndArmIdleCheck' },
      ],
      /** [P-44] Reclaimed for a client turned away: the same closing NOTICE as the idle timeout. */
      RECLAIM: {
        guard: 'idleLongEnough',
        target: '#session.closed',
        actions: [{ type: 'notice', params: { kind: 'idle-timeout' } }, closeAs('idle-reclaimed')],
      },
      /** [P-64] */
      QUOTA: { actions: 'adoptQuota' },
      /** [P-66] The identity was revoked: close now, or once the answer in flight is written. */
      REVOKE: [
        { guard: 'answerInFlight', actions: 'rememberRevocation' },
        {
          target: '#session.closed',
          actions: [{ type: 'notice', params: { kind: 'revoked' } }, closeAs('identity-revoked')],
        },
      ],
      SHUTDOWN: [
        /** [P-28] Wait for the answer in flight. */
        { guard: 'answerInFlight', actions: 'rememberShutdown' },
        {
          target: '#session.closed',
          actions: [{ type: 'notice', params: { kind: 'shutting-down' } }, closeAs('server-shutdown')],
        },
      ],
    },
  });
}

export const sessionMachine = sessionSetup.createMachine({
  id: 'session',
  context: ({ input }) => ({
    settings: {
      connection: input.connection,
      supportedVersions: input.supportedVersions,
      tiers: input.tiers,
      handshakeTimeoutMs: input.handshakeTimeoutMs,
      idleTimeoutMs: input.idleTimeoutMs,
    },
    identity: null,
    quota: quotaOf(0, input.quotaUsed ?? 0),
    answerInFlight: false,
    lastAnswerAt: 0,
    idleCheckDueAt: null,
    idleCheckDelayMs: input.idleTimeoutMs,
    idleCheckArmedByAnswer: false,
    receiptPending: false,
    shutdownPending: false,
    revoking: false,
    closeReason: '',
  }),
  initial: 'handshake',
  on: {
    /** [P-31] From any state. */
    PEER_CLOSED: { target: '.closed', actions: { type: 'closeAs', params: ({ event }) => ({ reason: event.reason }) } },
    /** [P-26] From any state, also with an answer in flight. */
    HISTORY_FAILED: { target: '.closed', actions: ['refuseHistoryUnavailable', closeAs('history-unavailable')] },
  },
  states: {
    // REQUEST and REPLY_SENT cannot arrive here: the glue sends nothing but HELLO before the WELCOME.
    handshake: {
      after: {
        /** [P-11] */
        handshakeTimeout: {
          target: 'closed',
          actions: [{ type: 'reject', params: { reason: 'handshake-timeout' } }, closeAs('handshake-timeout')],
        },
      },
      on: {
        HELLO: [
          {
            guard: not('sharesVersion'),
            target: 'closed',
            actions: ['rejectUnsupportedVersion', closeAs('unsupported-version')],
          },
          // The WELCOME is the first answer in flight: the idle timeout counts once the glue has written it.
          { guard: 'tierHasQuota', target: 'active', actions: 'welcome' },
          // A tier whose quota is 0 (or already used up): admitted, every get refused [P-21].
          { target: 'quotaExhausted', actions: 'welcome' },
        ],
        INVALID_REQUEST: { target: 'closed', actions: 'rejectBadHello' },
        /** [P-28] */
        SHUTDOWN: {
          target: 'closed',
          actions: [{ type: 'reject', params: { reason: 'shutting-down' } }, closeAs('server-shutdown')],
        },
      },
    },
    active: sessionState('#session.active', 'serve'),
    /** [P-21] list, usage and exit keep working; the next get of an existing image is refused and closes. */
    quotaExhausted: sessionState('#session.quotaExhausted', 'refuse'),
    closed: {
      type: 'final',
      entry: 'emitClosed',
    },
  },
  output: ({ context }) => outputOf(context),
});
