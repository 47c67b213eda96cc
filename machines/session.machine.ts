/**
 * One client session, from the HELLO to the close: it decides, the socket glue acts. The glue sends the events of
 * session.types.ts and carries out the emitted SessionEffects (`session.on(type, handler)`), in order.
 *
 *   handshake ──HELLO──▶ active ──last image served──▶ quotaExhausted
 *       │                  │ idle ⇄ busy                 │ idle ⇄ busy
 *       └──────────────────┴─────────────▶ closed ◀──────┘   (final; output { reason, admitted })
 *
 * `busy` means an answer is in flight: from the WELCOME, a REQUEST (or INVALID_REQUEST) until the glue's REPLY_SENT. The idle
 * timer runs only in `idle` and restarts on every entry to it [P-27]. The glue never sends a REQUEST while busy
 * ([P-16]: it queues pipelined requests) nor before the WELCOME; such an event would be ignored.
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

function quotaOf(limit: number, used: number): Quota {
  return { limit, used, remaining: Math.max(0, limit - used) };
}

function commandOf(event: SessionEvent): Command | undefined {
  return event.type === 'REQUEST' ? event.request.command : undefined;
}

function imageOf(event: RequestEvent): string {
  return event.request.command === 'get' ? event.request.image : '';
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
    handshakeTimeout: ({ context }) => context.handshakeTimeoutMs,
    idleTimeout: ({ context }) => context.idleTimeoutMs,
  },
  guards: {
    /** [P-10] */
    sharesVersion: ({ context, event }) => {
      assertEvent(event, 'HELLO');
      return highestCommonVersion(context.supportedVersions, event.versions) !== undefined;
    },
    /** [P-21] The tier of the HELLO's code leaves at least one get. */
    tierHasQuota: ({ context, event }) => {
      assertEvent(event, 'HELLO');
      return tierForCode(event.identity.code, context.tiers).quota > context.quota.used;
    },
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
    /** [P-21] Serving this get uses the last of the quota. */
    takesLastImage: ({ context }) => context.quota.remaining === 1,
    /** [P-26] */
    isFatalCode: ({ event }) => {
      assertEvent(event, 'INVALID_REQUEST');
      return FATAL_ERROR_CODES.has(event.code);
    },
    /** [P-28] */
    shutdownPending: ({ context }) => context.shutdownPending,
  },
  actions: {
    /** [P-12] Resolve the tier ([P-20]), start the quota, send WELCOME. */
    welcome: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'HELLO');
      const range = tierForCode(event.identity.code, context.tiers);
      const identity = { ...event.identity, tier: range.tier, canReadUsage: range.canReadUsage };
      const quota = quotaOf(range.quota, context.quota.used);
      const version = highestCommonVersion(context.supportedVersions, event.versions) ?? 0; // sharesVersion held
      enqueue.assign({ identity, quota });
      enqueue.emit({ type: 'welcome', version, identity, quota });
    }),
    /** [P-10] */
    rejectUnsupportedVersion: emit(({ context }) => ({
      type: 'reject',
      reason: 'unsupported-version',
      supported: [...context.supportedVersions],
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
    /** [P-18] */
    serveList: emit(({ context, event }) => {
      assertEvent(event, 'REQUEST');
      return { type: 'serve-list', requestId: event.request.id, identity: identityOf(context), quota: context.quota };
    }),
    /** [P-19], [P-21] Only a get answered with the image's bytes counts. */
    serveImage: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'REQUEST');
      const quota = quotaOf(context.quota.limit, context.quota.used + 1);
      enqueue.assign({ quota });
      enqueue.emit({ type: 'serve-image', requestId: event.request.id, image: imageOf(event), quota });
    }),
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
        quota: quotaOf(context.quota.limit, used),
      };
    }),
    /** [P-27], [P-28] A closing NOTICE. */
    notice: emit((_, params: { kind: NoticeKind }) => ({ type: 'notice', kind: params.kind })),
    /** [P-28] Shut down once the answer in flight is written. */
    rememberShutdown: assign({ shutdownPending: true }),
    closeAs: assign((_, params: { reason: string }) => ({ closeReason: params.reason })),
    /** [P-30] */
    emitClosed: emit(({ context }) => ({ type: 'closed', ...outputOf(context) })),
  },
});

/**
 * `idle` of active and of quotaExhausted: every answer but a served get costs nothing [P-21]; the idle timer runs
 * here only [P-27]. `getOfExistingImage` is the one difference between the two states: a get of an image the client
 * already holds is answered not-modified in both, since it transfers nothing [P-36].
 */
function idleState(getOfExistingImage: 'serve' | 'refuse') {
  return sessionSetup.createStateConfig({
    after: {
      idleTimeout: {
        target: '#session.closed',
        actions: [{ type: 'notice', params: { kind: 'idle-timeout' } }, closeAs('idle-timeout')],
      },
    },
    on: {
      REQUEST: [
        { guard: 'isList', target: 'busy', actions: 'serveList' },
        { guard: and(['isUsage', 'canReadUsage']), target: 'busy', actions: 'serveUsage' },
        { guard: 'isUsage', target: 'busy', actions: 'refuseUsage' },
        { guard: 'isExit', target: '#session.closed', actions: ['acknowledgeExit', closeAs('client-exit')] },
        { guard: 'isMissingImage', target: 'busy', actions: 'refuseMissingImage' },
        { guard: 'isUnchangedImage', target: 'busy', actions: 'serveNotModified' },
        ...(getOfExistingImage === 'serve'
          ? [
              { guard: 'takesLastImage', target: '#session.quotaExhausted.busy', actions: 'serveImage' } as const,
              { target: 'busy', actions: 'serveImage' } as const,
            ]
          : [{ target: '#session.closed', actions: ['refuseQuotaExhausted', closeAs('quota-exhausted')] } as const]),
      ],
      INVALID_REQUEST: [
        {
          guard: 'isFatalCode',
          target: '#session.closed',
          actions: ['refuseInvalidRequest', { type: 'closeAs', params: ({ event }) => ({ reason: event.code }) }],
        },
        { target: 'busy', actions: 'refuseInvalidRequest' },
      ],
      SHUTDOWN: {
        target: '#session.closed',
        actions: [{ type: 'notice', params: { kind: 'shutting-down' } }, closeAs('server-shutdown')],
      },
    },
  });
}

/** An answer is in flight until REPLY_SENT; a SHUTDOWN waits for it [P-28]. */
const busyState = sessionSetup.createStateConfig({
  on: {
    REPLY_SENT: [
      {
        guard: 'shutdownPending',
        target: '#session.closed',
        actions: [{ type: 'notice', params: { kind: 'shutting-down' } }, closeAs('server-shutdown')],
      },
      { target: 'idle' },
    ],
    SHUTDOWN: { actions: 'rememberShutdown' },
  },
});

export const sessionMachine = sessionSetup.createMachine({
  id: 'session',
  context: ({ input }) => ({
    connection: input.connection,
    supportedVersions: input.supportedVersions,
    tiers: input.tiers,
    handshakeTimeoutMs: input.handshakeTimeoutMs,
    idleTimeoutMs: input.idleTimeoutMs,
    identity: null,
    quota: quotaOf(0, input.quotaUsed ?? 0),
    shutdownPending: false,
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
          // The WELCOME is the first answer in flight: the idle timer starts once the glue has written it.
          { guard: 'tierHasQuota', target: 'active.busy', actions: 'welcome' },
          // A tier whose quota is 0 (or already used up): admitted, every get refused [P-21].
          { target: 'quotaExhausted.busy', actions: 'welcome' },
        ],
        INVALID_REQUEST: { target: 'closed', actions: 'rejectBadHello' },
        /** [P-28] */
        SHUTDOWN: {
          target: 'closed',
          actions: [{ type: 'reject', params: { reason: 'shutting-down' } }, closeAs('server-shutdown')],
        },
      },
    },
    active: {
      initial: 'idle',
      states: { idle: idleState('serve'), busy: busyState },
    },
    /** [P-21] list, usage and exit keep working; the next get of an existing image is refused and closes. */
    quotaExhausted: {
      initial: 'idle',
      states: { idle: idleState('refuse'), busy: busyState },
    },
    closed: {
      type: 'final',
      entry: 'emitClosed',
    },
  },
  output: ({ context }) => outputOf(context),
});
