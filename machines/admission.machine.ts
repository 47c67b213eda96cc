/**
 * Admission: the only owner of the count of open sessions. It admits a connection when a slot is free, starts its
 * session actor, and frees the slot when that actor ends; on SHUTDOWN it drains [P-28].
 *
 *   accepting ──SHUTDOWN──▶ draining ──no session left──▶ stopped (final, emits `drained`)
 *
 * Race-free by construction: an actor handles one event at a time, to the end, so two CONNECTs can never both see
 * the last free slot, and a SESSION_ENDED never interleaves with the admission it undoes.
 *
 * Sessions are NOT children (no spawnChild, no spawn in assign): XState copies the children object on every spawn,
 * so admitting the n-th session would cost O(n). Each session is a standalone actor, created in the `startSession`
 * action and kept in a Map that is mutated in place. Supervision is a subscription: when the session completes,
 * fails or is stopped, admission sends itself SESSION_ENDED (queued behind the event in progress, if any).
 *
 * The `admitted` effect, carrying the session, is delivered synchronously inside `admission.send(CONNECT)`, after
 * the session has started. A session emits nothing when it starts, so the glue loses nothing by subscribing to it
 * in its `admitted` handler, before it sends the HELLO.
 */
import { assertEvent, assign, createActor, emit, setup } from 'xstate';
import type {
  AdmissionContext,
  AdmissionEffect,
  AdmissionEvent,
  AdmissionInput,
  SessionActorRef,
} from './admission.types.ts';
import { sessionMachine } from './session.machine.ts';

function registered(context: AdmissionContext, connection: number): SessionActorRef {
  const session = context.sessions.get(connection);
  if (session === undefined) throw new Error(`admission: no session for connection ${connection}`);
  return session;
}

export const admissionMachine = setup({
  types: {
    context: {} as AdmissionContext,
    events: {} as AdmissionEvent,
    input: {} as AdmissionInput,
    emitted: {} as AdmissionEffect,
  },
  guards: {
    hasCapacity: ({ context }) => context.open < context.capacity,
    /** Makes SESSION_ENDED idempotent: a session ends once. */
    isRegistered: ({ context, event }) => {
      assertEvent(event, 'SESSION_ENDED');
      return context.sessions.has(event.connection);
    },
    noneOpen: ({ context }) => context.open === 0,
  },
  actions: {
    /** Creates, supervises and starts the session; the registry is mutated in place (O(1)). */
    startSession: ({ context, event, self }) => {
      assertEvent(event, 'CONNECT');
      const { connection } = event;
      // Pass `clock` only when given: `{ clock: undefined }` would replace XState's default timers.
      const options = context.clock === undefined ? {} : { clock: context.clock };
      const session = createActor(sessionMachine, { ...options, input: { ...context.sessionInput, connection } });
      const ended = () => self.send({ type: 'SESSION_ENDED', connection });
      session.subscribe({ complete: ended, error: ended });
      context.sessions.set(connection, session);
      session.start();
    },
    countAdmitted: assign({ open: ({ context }) => context.open + 1 }),
    emitAdmitted: emit(({ context, event }) => {
      assertEvent(event, 'CONNECT');
      return { type: 'admitted', connection: event.connection, session: registered(context, event.connection) };
    }),
    /** [P-9], [P-13], [P-28] */
    reject: emit(({ context, event }, params: { reason: 'server-full' | 'shutting-down' }) => {
      assertEvent(event, 'CONNECT');
      return {
        type: 'rejected',
        connection: event.connection,
        reason: params.reason,
        occupancy: { open: context.open, capacity: context.capacity },
        retryAfterMs: context.retryAfterMs,
      };
    }),
    forgetSession: ({ context, event }) => {
      assertEvent(event, 'SESSION_ENDED');
      context.sessions.delete(event.connection);
    },
    countEnded: assign({ open: ({ context }) => context.open - 1 }),
    /** [P-28] Each session closes now if idle, or after its answer in flight. */
    shutDownSessions: ({ context }) => {
      // A session that closes at once sends SESSION_ENDED, which waits in the mailbox: the Map is not changed
      // while this loop runs. Copy it anyway, so this stays true if that ever changes.
      for (const session of [...context.sessions.values()]) session.send({ type: 'SHUTDOWN' });
    },
    emitDrained: emit({ type: 'drained' }),
  },
}).createMachine({
  id: 'admission',
  context: ({ input }) => ({
    capacity: input.capacity,
    retryAfterMs: input.retryAfterMs,
    sessionInput: input.sessionInput,
    clock: input.clock,
    open: 0,
    sessions: new Map(),
  }),
  initial: 'accepting',
  on: {
    SESSION_ENDED: { guard: 'isRegistered', actions: ['forgetSession', 'countEnded'] },
  },
  states: {
    accepting: {
      on: {
        CONNECT: [
          // In this order: emitAdmitted reads the session that startSession put in the registry.
          { guard: 'hasCapacity', actions: ['startSession', 'countAdmitted', 'emitAdmitted'] },
          { actions: { type: 'reject', params: { reason: 'server-full' } } },
        ],
        SHUTDOWN: 'draining',
      },
    },
    draining: {
      entry: 'shutDownSessions',
      always: { guard: 'noneOpen', target: 'stopped' },
      on: {
        CONNECT: { actions: { type: 'reject', params: { reason: 'shutting-down' } } },
      },
    },
    // Final: the actor is done and ignores further events, so the glue stops accepting before it sends SHUTDOWN.
    stopped: {
      type: 'final',
      entry: 'emitDrained',
    },
  },
});
