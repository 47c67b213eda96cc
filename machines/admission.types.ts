/**
 * The admission actor's input, events and emitted effects (`admission.on(type, handler)`).
 */
import type { ActorOptions, ActorRefFrom, AnyActorLogic } from 'xstate';
import type { Occupancy } from '../src/protocol/messages.ts';
import type { sessionMachine } from './session.machine.ts';
import type { SessionInput } from './session.types.ts';

export type SessionActorRef = ActorRefFrom<typeof sessionMachine>;

/** XState's timer interface (not exported by name); a SimulatedClock in tests. */
export type Clock = NonNullable<ActorOptions<AnyActorLogic>['clock']>;

export interface AdmissionInput {
  /** [P-43] Sessions admitted at once (each from its HELLO until its session actor ends); handshakes not included. */
  capacity: number;
  /** [P-13] Told to clients rejected with server-full or too-many-handshakes, in ms. */
  retryAfterMs: number;
  /** [P-43] Connections in handshake (accepted, no HELLO yet) at once, in all; default: no bound. */
  maxHandshakes?: number;
  /** [P-43] Connections in handshake at once from one address; default: no bound. */
  maxHandshakesPerAddress?: number;
  /**
   * [P-44] A session idle this long (ms, no answer in flight, no receipt awaited) is closed when a client is turned
   * away for capacity, so that the client's retry gets in; default: never.
   */
  reclaimIdleAfterMs?: number;
  /** [P-65] Sessions one registered identity may hold at once; default: no bound. */
  maxSessionsPerIdentity?: number;
  /** Every session's input but its connection number. */
  sessionInput: Omit<SessionInput, 'connection'>;
  /** Handed to every session actor; XState's default (setTimeout) when absent. */
  clock?: Clock;
}

export type AdmissionEvent =
  /**
   * A connection was accepted; the glue numbers connections uniquely. `address` is the peer's (without its port), for
   * the bound per address [P-43]; `at` is now on the clock of the sessions' REPLY_SENT, for reclaiming idle ones.
   */
  | { type: 'CONNECT'; connection: number; address?: string; at?: number }
  /**
   * [P-43] The connection's HELLO came: it asks for a session slot. Granted silently (the session leaves the
   * handshake count), or refused with `slot-refused`, synchronously, inside send().
   */
  | {
      type: 'CLAIM_SLOT';
      connection: number;
      at?: number;
      /** [P-65] the registered identity the HELLO's key names, whose sessions are bounded too */
      identity?: string;
    }
  /** [P-66] The identity was revoked: its sessions close (each after its answer in flight). */
  | { type: 'REVOKE_IDENTITY'; identity: string }
  /** Sent by admission itself when a session actor completes, errors or is stopped (supervision). Idempotent. */
  | { type: 'SESSION_ENDED'; connection: number }
  /** [P-28] Stop admitting, shut every session down, stop when none is left. */
  | { type: 'SHUTDOWN' };

export type AdmissionEffect =
  /**
   * The connection may do its handshake: its session is started, in handshake. Subscribe to its effects; once its
   * HELLO is in, claim a slot (CLAIM_SLOT), then send it the HELLO.
   */
  | { type: 'admitted'; connection: number; session: SessionActorRef }
  /**
   * [P-9], [P-13], [P-28], [P-43] REJECT at once and close. `occupancy` is as it stood (not counting this
   * connection). A retryAfterMs of 0 says an idle session was just reclaimed for the retry [P-44].
   */
  | {
      type: 'rejected';
      connection: number;
      reason: 'server-full' | 'shutting-down' | 'too-many-handshakes';
      occupancy: Occupancy;
      retryAfterMs: number;
    }
  /**
   * [P-43] The connection, in its handshake, gave its place in the full handshake pool to a newcomer from an address
   * holding fewer: REJECT too-many-handshakes, end its session (started) and close. It has already left the registry
   * and the counts. `occupancy` and `retryAfterMs` as for `rejected`.
   */
  | { type: 'displaced'; connection: number; occupancy: Occupancy; retryAfterMs: number }
  /** [P-43] The HELLO came but every slot is taken: REJECT server-full, and end the session (still in handshake). */
  | {
      type: 'slot-refused';
      connection: number;
      occupancy: Occupancy;
      retryAfterMs: number;
      /** [P-65] too-many-sessions: the identity holds all the sessions it may (absent: server-full) */
      reason?: 'too-many-sessions';
    }
  /** Every session has ended after SHUTDOWN; the actor is done. */
  | { type: 'drained' };

/** A connection with a session actor: in handshake until its slot is claimed, then admitted. */
export interface SessionEntry {
  session: SessionActorRef;
  address: string;
  admitted: boolean;
  /** [P-65] the registered identity of an admitted keyed session */
  identity?: string;
}

export interface AdmissionContext {
  capacity: number;
  retryAfterMs: number;
  maxHandshakes: number;
  maxHandshakesPerAddress: number;
  reclaimIdleAfterMs: number;
  maxSessionsPerIdentity: number;
  /** [P-65] Admitted sessions by registered identity; an identity with none has no key. Mutated in place. */
  sessionsByIdentity: Map<string, number>;
  sessionInput: Omit<SessionInput, 'connection'>;
  clock: Clock | undefined;
  /** [P-43] Admitted sessions (slot claimed), the occupancy's `open`. */
  open: number;
  /** [P-43] Connections in handshake. open + handshakes = sessions.size. */
  handshakes: number;
  /** [P-43] Connections in handshake by address; an address with none has no key. Mutated in place. */
  handshakesByAddress: Map<string, number>;
  /** Every session actor by connection, in handshake or admitted. Mutated in place (see admission.machine.ts). */
  sessions: Map<number, SessionEntry>;
}
