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
  /** Sessions open at once (each from CONNECT until its session actor ends). */
  capacity: number;
  /** [P-13] Told to clients rejected with server-full, in ms. */
  retryAfterMs: number;
  /** Every session's input but its connection number. */
  sessionInput: Omit<SessionInput, 'connection'>;
  /** Handed to every session actor; XState's default (setTimeout) when absent. */
  clock?: Clock;
}

export type AdmissionEvent =
  /** A connection was accepted; the glue numbers connections uniquely. */
  | { type: 'CONNECT'; connection: number }
  /** Sent by admission itself when a session actor completes, errors or is stopped (supervision). Idempotent. */
  | { type: 'SESSION_ENDED'; connection: number }
  /** [P-28] Stop admitting, shut every session down, stop when none is left. */
  | { type: 'SHUTDOWN' };

export type AdmissionEffect =
  /** A slot is taken and the session started: subscribe to its effects, then send it the HELLO. */
  | { type: 'admitted'; connection: number; session: SessionActorRef }
  /** [P-9], [P-13], [P-28] REJECT at once and close. `occupancy` is as it stood (not counting this connection). */
  | {
      type: 'rejected';
      connection: number;
      reason: 'server-full' | 'shutting-down';
      occupancy: Occupancy;
      retryAfterMs: number;
    }
  /** Every session has ended after SHUTDOWN; the actor is done. */
  | { type: 'drained' };

export interface AdmissionContext {
  capacity: number;
  retryAfterMs: number;
  sessionInput: Omit<SessionInput, 'connection'>;
  clock: Clock | undefined;
  /** Open sessions; always equal to sessions.size. */
  open: number;
  /** Open sessions by connection. Mutated in place (see admission.machine.ts). */
  sessions: Map<number, SessionActorRef>;
}
