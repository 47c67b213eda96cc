/**
 * The session machine's input, the events the socket glue sends it, and the effects it emits back
 * (`session.on(type, handler)`). The machine decides; the glue writes frames and records history.
 */
import type { Command, ErrorCode, NoticeKind, Quota, Request, SessionIdentity } from '../src/protocol/messages.ts';
import type { TierTable } from './tiers.ts';

export interface SessionInput {
  /** The glue's id for the connection, echoed in nothing but useful in logs and the admission registry. */
  connection: number;
  /** Protocol versions this server speaks ([P-10]). */
  supportedVersions: readonly number[];
  tiers: TierTable;
  /** [P-11] Deadline for a complete HELLO, in ms. */
  handshakeTimeoutMs: number;
  /** [P-27] Idle time allowed with no answer in flight, in ms. */
  idleTimeoutMs: number;
  /** Gets already counted against this session's quota (0 when absent). */
  quotaUsed?: number;
}

/** The glue parsed and validated the HELLO ([P-8]) and drew the session's name and code ([P-12]). */
export interface HelloEvent {
  type: 'HELLO';
  versions: number[];
  identity: { name: string; code: number };
  /**
   * [P-60] [P-64] The session as the access control granted it, when the server is not open to all: a keyed
   * identity's tier and quota (the identity's, over its period), or an anonymous session's tier in mixed mode. Absent:
   * the code decides the tier ([P-20]).
   */
  grant?: { identity: SessionIdentity; quota: Quota };
}

/**
 * A parsed request ([P-15]); for `get`, `imageExists` says whether the catalog has the image, and `imageUnchanged`
 * whether the request's `have` is the image's current SHA-256 ([P-34]).
 */
export interface RequestEvent {
  type: 'REQUEST';
  request: Request;
  imageExists?: boolean;
  imageUnchanged?: boolean;
  /** [P-48] a request that costs no quota, over the session's budget of them: refused `rate-limited`, not fatal */
  overBudget?: boolean;
}

/**
 * The glue could not parse a frame from the client ([P-3], [P-4], [P-5], [P-26]). After the WELCOME it answers a
 * request slot like REQUEST does; in handshake it means the first frame was not a valid HELLO ([P-11]).
 */
export interface InvalidRequestEvent {
  type: 'INVALID_REQUEST';
  requestId: number | null;
  code: ErrorCode;
  message: string;
}

/**
 * The glue finished writing the answer in flight (a whole stream included) [P-16]. `at` is when, in ms on the clock
 * the session's timers run on (a monotonic clock in production, the SimulatedClock's now() in tests): the idle
 * timeout is measured from it [P-27]. It is the only time the machine is told; everything else it knows of time
 * comes from its own `after` delays.
 */
export interface ReplySentEvent {
  type: 'REPLY_SENT';
  at: number;
  /**
   * [P-27] [P-40] Whether a stream written on this connection still awaits its RECEIVED (the answer just written, if
   * it was a stream, or an earlier one). While one does, the session is not idle: the drain deadline watches it.
   */
  receiptPending?: boolean;
}

/**
 * [P-40] A RECEIVED came: a stream was delivered, at `at` (same clock as REPLY_SENT's). `receiptPending` says whether
 * another stream still awaits its RECEIVED. With none pending and no answer in flight, the idle timeout counts from
 * `at` [P-27].
 */
export interface DeliveredEvent {
  type: 'DELIVERED';
  at: number;
  receiptPending: boolean;
}

export type SessionEvent =
  | HelloEvent
  | RequestEvent
  | InvalidRequestEvent
  | ReplySentEvent
  | DeliveredEvent
  /** [P-31] The client went away; reason is 'client-closed', 'connection-reset' or another word for the logs. */
  | { type: 'PEER_CLOSED'; reason: string }
  /** [P-26] history-unavailable: the glue could not record what the session did. */
  | { type: 'HISTORY_FAILED'; imageNotServed?: boolean }
  /** [P-28] The server is stopping. */
  | { type: 'SHUTDOWN' }
  /**
   * [P-64] A keyed session's quota as it stands now (its identity's, over every session, in the current window),
   * sent by the glue before a REQUEST when it is not the quota the session has: the period may have turned, the tier
   * changed, another session used some.
   */
  | { type: 'QUOTA'; quota: Quota }
  /** [P-66] The session's identity was revoked: close (after the answer in flight) with NOTICE `revoked`. */
  | { type: 'REVOKE' }
  /**
   * [P-44] A client was turned away for capacity: close if idle (no answer in flight, no receipt awaited) for at least
   * `idleForMs` at `at` (the clock of REPLY_SENT's `at`); otherwise ignored.
   */
  | { type: 'RECLAIM'; at: number; idleForMs: number };

/** Reasons a session ends without a WELCOME ([P-13]); `server-full` is decided by admission, not here. */
export type HandshakeRejectReason = 'handshake-timeout' | 'shutting-down' | 'bad-hello' | 'frame-too-large';

/**
 * What the glue must do, emitted in order. Effects that answer a request carry its id and the quota as it stands
 * after the decision ([P-17]). After an answer that does not close the session, the glue sends REPLY_SENT once the
 * answer is written. `closed` is always the last effect.
 */
export type SessionEffect =
  /** [P-12] Send WELCOME. */
  | { type: 'welcome'; version: number; identity: SessionIdentity; quota: Quota }
  /** [P-10], [P-13] Send REJECT; `closed` follows. */
  | { type: 'reject'; reason: 'unsupported-version'; supported: number[] }
  | { type: 'reject'; reason: HandshakeRejectReason }
  /** [P-18] */
  | { type: 'serve-list'; requestId: number; identity: SessionIdentity; quota: Quota }
  /** [P-19] Stream the image; `quota.used` already counts it. */
  | { type: 'serve-image'; requestId: number; image: string; quota: Quota }
  /** [P-35] [P-36] The client holds the current image: REPLY not-modified, no stream; the quota is unchanged. */
  | { type: 'serve-not-modified'; requestId: number; image: string; quota: Quota }
  /** [P-22] */
  | { type: 'serve-usage'; requestId: number; quota: Quota }
  /** [P-23] Reply to `exit`; `closed` follows. */
  | { type: 'acknowledge-exit'; requestId: number; quota: Quota }
  /**
   * [P-26] Send ERROR; when `fatal`, `closed` follows. `command` and `image` say what was refused when a parsed
   * request was. Before the WELCOME (only HISTORY_FAILED can refuse there) `quota` has limit 0.
   */
  | {
      type: 'refuse';
      requestId: number | null;
      code: ErrorCode;
      message: string;
      fatal: boolean;
      quota: Quota;
      command?: Command;
      image?: string;
    }
  /** [P-27], [P-28] Send a closing NOTICE; `closed` follows. */
  | { type: 'notice'; kind: NoticeKind }
  /** [P-30] Close gracefully after the frames above; record the end. Same as the machine's output. */
  | { type: 'closed'; reason: string; admitted: boolean };

export type SessionEffectType = SessionEffect['type'];

/** The machine's output when it reaches `closed`. */
export interface SessionOutput {
  /**
   * e.g. client-exit, client-closed, connection-reset, quota-exhausted, idle-timeout, idle-reclaimed, server-shutdown,
   * an ErrorCode.
   */
  reason: string;
  /** Whether a WELCOME was sent. */
  admitted: boolean;
}

/** The session's settings, from its input; they never change. */
export interface SessionSettings {
  connection: number;
  supportedVersions: readonly number[];
  tiers: TierTable;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
}

/**
 * Keep it small, and under 20 fields: every `assign` copies it, and with xstate 5.33 on Node 20 a copy of 20 fields or more
 * made each assign about three times slower (measured: 2.2 µs a transition at 19 fields, 6.2 µs at 20).
 */
export interface SessionContext {
  /** What the input fixed, one object for the session's life: one field for every assign to copy, not five. */
  settings: SessionSettings;
  /** Set by the WELCOME. */
  identity: SessionIdentity | null;
  /** Before the WELCOME: limit 0 and the input's quotaUsed. */
  quota: Quota;
  /**
   * An answer is being written: from the WELCOME, a REQUEST or an INVALID_REQUEST until REPLY_SENT. The glue sends
   * one request at a time ([P-16]); the idle timeout does not count while this is true ([P-27]).
   */
  answerInFlight: boolean;
  /** [P-27] When the last answer was written (REPLY_SENT's `at`); the idle timeout is measured from it. */
  lastAnswerAt: number;
  /**
   * [P-27] When the pending idle check falls due, on the clock of REPLY_SENT's `at`; null when it was armed while an
   * answer was in flight, at a time the machine does not know.
   */
  idleCheckDueAt: number | null;
  /** The delay the pending idle check was armed with, in ms. */
  idleCheckDelayMs: number;
  /**
   * Whether a REPLY_SENT armed the pending idle check, from its `at`, so that it falls due exactly. A check armed in
   * flight has no time; one armed when an earlier check fell due counts from the time that one was due, later if
   * its timer fired late. The next REPLY_SENT re-arms either from its `at`.
   */
  idleCheckArmedByAnswer: boolean;
  /**
   * [P-27] [P-40] A stream written on this connection awaits its RECEIVED: the session is not idle meanwhile (the drain
   * deadline cuts a reader that stops, [P-41]).
   */
  receiptPending: boolean;
  /** A SHUTDOWN arrived while an answer was in flight ([P-28]). */
  shutdownPending: boolean;
  /** [P-66] The close pending (shutdownPending) is for a revocation: NOTICE `revoked`, reason identity-revoked. */
  revoking: boolean;
  closeReason: string;
}
