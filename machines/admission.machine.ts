/**
 * Admission: the only owner of the counts of sessions and handshakes. Slots go to sessions, not to sockets that have
 * not said HELLO [P-43]: a connection is let into its handshake (its session actor started) when a slot is free and
 * the handshakes in progress are within their bounds, in all and per address; its HELLO then claims a slot
 * (CLAIM_SLOT), which it holds until its session actor ends. When a client is turned away for capacity, one session
 * idle for reclaimIdleAfterMs is closed, so that the client's retry gets in [P-44]. On SHUTDOWN it drains [P-28].
 *
 *   accepting ──SHUTDOWN──▶ draining ──no session left──▶ stopped (final, emits `drained`)
 *
 * When the handshake pool is full, a newcomer from an address holding at least two fewer handshakes than the address
 * holding the most takes the place of that address's oldest handshake (`displaced`): a few addresses reopening
 * silent sockets cannot keep everyone else out [P-43].
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
 * the session has started; `slot-refused` inside `admission.send(CLAIM_SLOT)`. A session emits nothing when it starts, so the glue loses nothing by subscribing to it
 * in its `admitted` handler, before it sends the HELLO.
 */
import { and, assertEvent, assign, createActor, emit, enqueueActions, setup } from 'xstate';
import type {
  AdmissionContext,
  AdmissionEffect,
  AdmissionEvent,
  AdmissionInput,
  SessionActorRef,
} from './admission.types.ts';
import { sessionMachine } from './session.machine.ts';

/** [P-44] Sessions looked at, at most, for one idle enough to reclaim: turning a client away stays cheap. */
export const RECLAIM_SCAN_LIMIT = 64;

function registered(context: AdmissionContext, connection: number): SessionActorRef {
  const entry = context.sessions.get(connection);
  if (entry === undefined) throw new Error(`admission: no session for connection ${connection}`);
  return entry.session;
}

function addressOf(event: AdmissionEvent): string {
  return event.type === 'CONNECT' ? (event.address ?? '') : '';
}

/** One handshake more (+1) or less (-1) from `address`; the Map holds no zero. */
function countHandshake(context: AdmissionContext, address: string, delta: 1 | -1): void {
  const count = (context.handshakesByAddress.get(address) ?? 0) + delta;
  if (count > 0) context.handshakesByAddress.set(address, count);
  else context.handshakesByAddress.delete(address);
}

/**
 * [P-43] The rule of a full pool of connections in their handshake: among `counts` (what each address holds), the
 * one holding the most, if it holds at least two more than `own` (what the newcomer's address holds); its oldest
 * gives way to the newcomer. The admission actor applies it to handshakes, the TLS adapter (src/server/tls-listener.ts)
 * to connections before their first byte. At most as many entries as the pool holds.
 */
export function crowdingAddress<A>(counts: Iterable<readonly [A, number]>, own: number): A | undefined {
  let top: A | undefined;
  let most = own + 1;
  for (const [address, count] of counts) {
    if (count > most) [top, most] = [address, count];
  }
  return top;
}

/** [P-43] The address whose oldest handshake gives way to a newcomer from `address` (crowdingAddress). */
function crowdingHandshakes(context: AdmissionContext, address: string): string | undefined {
  return crowdingAddress(context.handshakesByAddress, context.handshakesByAddress.get(address) ?? 0);
}

/**
 * [P-44] Closes the first admitted session, among the next RECLAIM_SCAN_LIMIT in turn, that has been idle for
 * reclaimIdleAfterMs at `at`: each session decides (RECLAIM), so only it reads its own idleness. The sessions looked
 * at and kept move to the end of the registry, so the next scan looks at others. True if one closed; its
 * SESSION_ENDED frees its slot right after the event in progress.
 */
function reclaimIdleSession(context: AdmissionContext, at: number | undefined): boolean {
  if (at === undefined || !Number.isFinite(context.reclaimIdleAfterMs)) return false;
  const kept: number[] = [];
  let reclaimed = false;
  for (const [connection, entry] of context.sessions) {
    if (!entry.admitted) continue;
    entry.session.send({ type: 'RECLAIM', at, idleForMs: context.reclaimIdleAfterMs });
    if (entry.session.getSnapshot().status !== 'active') {
      reclaimed = true;
      break;
    }
    kept.push(connection);
    if (kept.length >= RECLAIM_SCAN_LIMIT) break;
  }
  for (const connection of kept) {
    const entry = context.sessions.get(connection);
    if (entry === undefined) continue;
    context.sessions.delete(connection);
    context.sessions.set(connection, entry);
  }
  return reclaimed;
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
    /** [P-43] Room for one more handshake, in all and from this address. */
    hasHandshakeRoom: ({ context, event }) =>
      context.handshakes < context.maxHandshakes &&
      (context.handshakesByAddress.get(addressOf(event)) ?? 0) < context.maxHandshakesPerAddress,
    /**
     * [P-43] The handshake pool is full, the newcomer's address is within its own bound, and another address holds
     * at least two more handshakes than it: the newcomer takes the place of that address's oldest handshake.
     */
    canDisplaceHandshake: ({ context, event }) =>
      context.handshakes >= context.maxHandshakes &&
      (context.handshakesByAddress.get(addressOf(event)) ?? 0) < context.maxHandshakesPerAddress &&
      crowdingHandshakes(context, addressOf(event)) !== undefined,
    /** [P-43] A CLAIM_SLOT from a connection still in its handshake. */
    isHandshaking: ({ context, event }) => {
      assertEvent(event, 'CLAIM_SLOT');
      return context.sessions.get(event.connection)?.admitted === false;
    },
    /** Makes SESSION_ENDED idempotent: a session ends once. */
    isRegistered: ({ context, event }) => {
      assertEvent(event, 'SESSION_ENDED');
      return context.sessions.has(event.connection);
    },
    noneOpen: ({ context }) => context.sessions.size === 0,
    /** [P-65] The HELLO's identity (if any) holds fewer sessions than it may. */
    identityHasRoom: ({ context, event }) => {
      assertEvent(event, 'CLAIM_SLOT');
      if (event.identity === undefined) return true;
      return (context.sessionsByIdentity.get(event.identity) ?? 0) < context.maxSessionsPerIdentity;
    },
  },
  actions: {
    /** Creates, supervises and starts the session, in handshake; the registry is mutated in place (O(1)). */
    startSession: ({ context, event, self }) => {
      assertEvent(event, 'CONNECT');
      const { connection } = event;
      // Pass `clock` only when given: `{ clock: undefined }` would replace XState's default timers.
      const options = context.clock === undefined ? {} : { clock: context.clock };
      const session = createActor(sessionMachine, { ...options, input: { ...context.sessionInput, connection } });
      const ended = () => self.send({ type: 'SESSION_ENDED', connection });
      session.subscribe({ complete: ended, error: ended });
      const address = addressOf(event);
      context.sessions.set(connection, { session, address, admitted: false });
      countHandshake(context, address, 1);
      session.start();
    },
    countHandshake: assign({ handshakes: ({ context }) => context.handshakes + 1 }),
    /**
     * [P-43] Turns away the oldest handshake of the address holding the most (the registry keeps insertion order):
     * it leaves the registry and the counts now, so its SESSION_ENDED, later, is ignored; the glue is told to REJECT
     * it too-many-handshakes and close it (which ends its session).
     */
    displaceHandshake: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'CONNECT');
      const crowding = crowdingHandshakes(context, addressOf(event));
      for (const [connection, entry] of context.sessions) {
        if (entry.admitted || entry.address !== crowding) continue;
        context.sessions.delete(connection);
        countHandshake(context, entry.address, -1);
        enqueue.assign({ handshakes: context.handshakes - 1 });
        const occupancy = { open: context.open, capacity: context.capacity };
        enqueue.emit({ type: 'displaced', connection, occupancy, retryAfterMs: context.retryAfterMs });
        return;
      }
    }),
    /** [P-43] The HELLO takes a slot: the connection leaves the handshake count for the open one. */
    claimSlot: assign(({ context, event }) => {
      assertEvent(event, 'CLAIM_SLOT');
      const entry = context.sessions.get(event.connection);
      if (entry === undefined) return {};
      entry.admitted = true;
      countHandshake(context, entry.address, -1);
      if (event.identity !== undefined) {
        entry.identity = event.identity;
        context.sessionsByIdentity.set(event.identity, (context.sessionsByIdentity.get(event.identity) ?? 0) + 1);
      }
      return { open: context.open + 1, handshakes: context.handshakes - 1 };
    }),
    emitAdmitted: emit(({ context, event }) => {
      assertEvent(event, 'CONNECT');
      return { type: 'admitted', connection: event.connection, session: registered(context, event.connection) };
    }),
    /** [P-9], [P-13], [P-28], [P-43] */
    reject: emit(({ context, event }, params: { reason: 'shutting-down' | 'too-many-handshakes' }) => {
      assertEvent(event, 'CONNECT');
      return {
        type: 'rejected',
        connection: event.connection,
        reason: params.reason,
        occupancy: { open: context.open, capacity: context.capacity },
        retryAfterMs: context.retryAfterMs,
      };
    }),
    /** [P-9] [P-13] [P-44] Every slot is taken: reclaim an idle session if one is idle enough, and say so. */
    turnAway: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, ['CONNECT', 'CLAIM_SLOT']);
      const occupancy = { open: context.open, capacity: context.capacity };
      const retryAfterMs = reclaimIdleSession(context, event.at) ? 0 : context.retryAfterMs;
      const { connection } = event;
      if (event.type === 'CONNECT') {
        enqueue.emit({ type: 'rejected', connection, reason: 'server-full', occupancy, retryAfterMs });
      } else {
        enqueue.emit({ type: 'slot-refused', connection, occupancy, retryAfterMs });
      }
    }),
    /** Frees what the session held: its slot, or its handshake. */
    forgetSession: assign(({ context, event }) => {
      assertEvent(event, 'SESSION_ENDED');
      const entry = context.sessions.get(event.connection);
      if (entry === undefined) return {};
      context.sessions.delete(event.connection);
      if (entry.identity !== undefined) {
        const held = (context.sessionsByIdentity.get(entry.identity) ?? 0) - 1;
        if (held > 0) context.sessionsByIdentity.set(entry.identity, held);
        else context.sessionsByIdentity.delete(entry.identity);
      }
      if (entry.admitted) return { open: context.open - 1 };
      countHandshake(context, entry.address, -1);
      return { handshakes: context.handshakes - 1 };
    }),
    /** [P-28] Each session closes now if idle, or after its answer in flight. */
    shutDownSessions: ({ context }) => {
      // A session that closes at once sends SESSION_ENDED, which waits in the mailbox: the Map is not changed
      // while this loop runs. Copy it anyway, so this stays true if that ever changes.
      for (const entry of [...context.sessions.values()]) entry.session.send({ type: 'SHUTDOWN' });
    },
    emitDrained: emit({ type: 'drained' }),
    /** [P-65] The identity holds all the sessions it may: REJECT too-many-sessions. */
    refuseIdentity: emit(({ context, event }) => {
      assertEvent(event, 'CLAIM_SLOT');
      const occupancy = { open: context.open, capacity: context.capacity };
      return {
        type: 'slot-refused',
        connection: event.connection,
        occupancy,
        retryAfterMs: context.retryAfterMs,
        reason: 'too-many-sessions',
      } as const;
    }),
    /** [P-66] Every admitted session of the identity closes (each after its answer in flight). */
    revokeIdentity: ({ context, event }) => {
      assertEvent(event, 'REVOKE_IDENTITY');
      if (!context.sessionsByIdentity.has(event.identity)) return;
      for (const entry of [...context.sessions.values()]) {
        if (entry.identity === event.identity) entry.session.send({ type: 'REVOKE' });
      }
    },
  },
}).createMachine({
  id: 'admission',
  context: ({ input }) => ({
    capacity: input.capacity,
    retryAfterMs: input.retryAfterMs,
    maxHandshakes: input.maxHandshakes ?? Number.POSITIVE_INFINITY,
    maxHandshakesPerAddress: input.maxHandshakesPerAddress ?? Number.POSITIVE_INFINITY,
    reclaimIdleAfterMs: input.reclaimIdleAfterMs ?? Number.POSITIVE_INFINITY,
    maxSessionsPerIdentity: input.maxSessionsPerIdentity ?? Number.POSITIVE_INFINITY,
    sessionsByIdentity: new Map(),
    sessionInput: input.sessionInput,
    clock: input.clock,
    open: 0,
    handshakes: 0,
    handshakesByAddress: new Map(),
    sessions: new Map(),
  }),
  initial: 'accepting',
  on: {
    SESSION_ENDED: { guard: 'isRegistered', actions: 'forgetSession' },
    REVOKE_IDENTITY: { actions: 'revokeIdentity' },
  },
  states: {
    accepting: {
      on: {
        CONNECT: [
          // In this order: emitAdmitted reads the session that startSession put in the registry.
          {
            guard: and(['hasCapacity', 'hasHandshakeRoom']),
            actions: ['startSession', 'countHandshake', 'emitAdmitted'],
          },
          {
            guard: and(['hasCapacity', 'canDisplaceHandshake']),
            actions: ['displaceHandshake', 'startSession', 'countHandshake', 'emitAdmitted'],
          },
          { guard: 'hasCapacity', actions: { type: 'reject', params: { reason: 'too-many-handshakes' } } },
          { actions: 'turnAway' },
        ],
        CLAIM_SLOT: [
          { guard: and(['isHandshaking', 'hasCapacity', 'identityHasRoom']), actions: 'claimSlot' },
          { guard: and(['isHandshaking', 'hasCapacity']), actions: 'refuseIdentity' },
          { guard: 'isHandshaking', actions: 'turnAway' },
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
