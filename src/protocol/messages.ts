/**
 * The bodies of the protocol's JSON messages (docs/PROTOCOL.md). Types only: parsing and validation live in
 * parse-message.ts, framing in frame.ts.
 */

export const PROTOCOL_VERSIONS = [1] as const;

/** [P-4] message types. */
export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REJECT: 0x03,
  REQUEST: 0x10,
  REPLY: 0x11,
  ERROR: 0x12,
  NOTICE: 0x13,
  /** [P-40] client to server: the END of the stream answering request `id` was read */
  RECEIVED: 0x14,
  DATA: 0x20,
  END: 0x21,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface Hello {
  versions: number[];
  client?: string;
  credential?: unknown;
}

export interface Quota {
  limit: number;
  used: number;
  remaining: number;
  /**
   * [P-64] A keyed session's quota is its identity's, over a period: `session` (the session's own) or a fixed window
   * (`minute`, `hour`, `day`, `week`), and `resetsAt` (ISO-8601 UTC) the end of the window, null for `session`.
   * Absent from an anonymous session's quota, which is always the session's.
   */
  period?: string;
  resetsAt?: string | null;
}

export interface SessionIdentity {
  name: string;
  code: number;
  tier: string;
  canReadUsage: boolean;
  /** [P-68] the registered client whose key the HELLO carried; absent for an anonymous session */
  identity?: string;
  /** [P-67] a keyed session's right to read usage: everyone's (`all`) or its identity's sessions only (`own`) */
  usageScope?: 'all' | 'own';
}

export interface ServerLimits {
  maxRequestBytes: number;
  maxFrameBytes: number;
  idleTimeoutMs: number;
}

export interface Welcome {
  version: number;
  server: string;
  session: SessionIdentity;
  quota: Quota;
  limits: ServerLimits;
}

/** [P-13] */
export type RejectReason =
  | 'server-full'
  | 'unsupported-version'
  | 'bad-hello'
  | 'handshake-timeout'
  | 'history-unavailable'
  | 'frame-too-large'
  | 'too-many-handshakes'
  | 'shutting-down'
  | CredentialRejectReason
  /** [P-65] the identity already holds as many sessions as it may */
  | 'too-many-sessions'
  /** [P-69] a plain-text HELLO reached a server that speaks TLS only (this REJECT is sent in plain text) */
  | 'tls-required';

/** [P-62] [P-63] */
export type CredentialRejectReason =
  | 'credential-required'
  | 'credential-malformed'
  | 'credential-invalid'
  | 'credential-revoked'
  | 'credential-throttled';

export interface Occupancy {
  open: number;
  capacity: number;
}

export interface Reject {
  reason: RejectReason;
  message: string;
  occupancy?: Occupancy;
  retryAfterMs?: number;
  supported?: number[];
}

export type Command = 'list' | 'get' | 'usage' | 'exit';
export const COMMANDS: readonly Command[] = ['list', 'get', 'usage', 'exit'];

/** [P-15] A request as the server understood it. */
export type Request =
  | ListRequest
  | { id: number; command: 'get'; image: string; have?: string }
  | UsageCommandRequest
  | { id: number; command: 'exit' };

/** [P-45] `list` pages: only images after `after` in catalog order, at most `limit` of them. */
export interface ListRequest {
  id: number;
  command: 'list';
  after?: string;
  limit?: number;
}

/** [P-46] `usage` filters: one session by name, and a time range (ISO-8601, `since` inclusive, `until` exclusive). */
export interface UsageCommandRequest {
  id: number;
  command: 'usage';
  client?: string;
  since?: string;
  until?: string;
}

export interface ImageInfo {
  name: string;
  bytes: number;
  modified: string;
  sha256: string;
}

export type Reply =
  | {
      id: number;
      command: 'list';
      status: 'ok';
      images: ImageInfo[];
      /**
       * [P-45] whether images follow the last one given; `next` is then its name, to pass as `after`. Absent from a
       * server before [P-45], whose REPLY holds the whole catalog.
       */
      more?: boolean;
      next?: string | null;
      session: SessionIdentity;
      quota: Quota;
    }
  | {
      id: number;
      command: 'get';
      status: 'ok';
      image: string;
      bytes: number;
      sha256: string;
      modified: string;
      stream: true;
      quota: Quota;
    }
  | NotModifiedReply
  | { id: number; command: 'usage'; status: 'ok'; contentType: 'application/json'; stream: true; quota: Quota }
  | { id: number; command: 'exit'; status: 'ok'; quota: Quota };

/** [P-35] The answer to a `get` whose `have` is the image's current SHA-256: no stream, and it costs nothing. */
export type NotModifiedReply = {
  id: number;
  command: 'get';
  status: 'not-modified';
  image: string;
  bytes: number;
  sha256: string;
  modified: string;
  quota: Quota;
};

/** [P-26] */
/** [P-26] The version 1 error codes, each with whether it closes the connection: one table, as in the spec. */
const ERROR_FATALITY = {
  'unknown-command': false,
  'bad-request': false,
  'image-not-found': false,
  'usage-forbidden': false,
  'rate-limited': false,
  'quota-exhausted': true,
  'frame-too-large': true,
  'malformed-message': true,
  'unexpected-message': true,
  'history-unavailable': true,
  'too-many-requests': true,
  'internal-error': true,
} as const;
export type ErrorCode = keyof typeof ERROR_FATALITY;
export const ERROR_CODES = Object.keys(ERROR_FATALITY) as readonly ErrorCode[];
export const FATAL_ERROR_CODES: ReadonlySet<ErrorCode> = new Set(ERROR_CODES.filter((code) => ERROR_FATALITY[code]));

export interface ErrorBody {
  id: number | null;
  code: ErrorCode;
  message: string;
  fatal: boolean;
  quota?: Quota;
  /** [P-48] with `rate-limited`: ms until the session may make a request that costs no quota again */
  retryAfterMs?: number;
}

/**
 * [P-66] `revoked`: the session's identity was revoked by the operator. [P-70] `catalog-changed` (never closing): the
 * catalog changed since the session last heard of it.
 */
export type NoticeKind = 'idle-timeout' | 'shutting-down' | 'revoked' | 'catalog-changed';

export interface Notice {
  kind: NoticeKind;
  message: string;
  closing: boolean;
}

/** [P-40] The receipt a client sends once it has read a stream's END. */
export interface Receipt {
  id: number;
}

/** [P-24] */
export interface StreamEnd {
  bytes: number;
  sha256: string;
}

/** Limits of [P-3] that do not depend on the server's configuration. */
export const HELLO_MAX_BYTES = 1024;
export const CLIENT_FIRST_FRAME_MAX_BYTES = 64 * 1024;
/** [P-16] */
export const MAX_PIPELINED_REQUESTS = 16;
/** [P-16] More unanswered requests than this, arrived at once, close the connection with too-many-requests. */
export const MAX_UNANSWERED_REQUESTS = 64;
/** [P-30] */
export const CLOSE_LINGER_MS = 2000;

/**
 * [P-33] What a version 1 client accepts from the wire: a later server may add error codes, notice kinds (and,
 * before any version is agreed, reject reasons), so the parsers keep an unknown one verbatim rather than refuse it.
 * The strict types above are what a version 1 server sends; each is assignable to its `Received` counterpart.
 */
export type ReceivedErrorBody = Omit<ErrorBody, 'code'> & { code: ErrorCode | (string & {}) };
export type ReceivedNotice = Omit<Notice, 'kind'> & { kind: NoticeKind | (string & {}) };
export type ReceivedReject = Omit<Reject, 'reason'> & { reason: RejectReason | (string & {}) };
