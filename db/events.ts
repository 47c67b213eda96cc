/**
 * The events of the history, as stored: a typed `{ type, data }` union. Every row of the events table is one of
 * these; the usage JSON and the quota and identity state are projections of them.
 */

export interface Occupancy {
  open: number;
  capacity: number;
}

export type HistoryEvent =
  /** `nextConnection`: the number this run numbers its connections from (absent in histories from before it) */
  | { type: 'server-started'; data: { version: string; pid: number; capacity: number; nextConnection?: number } }
  | { type: 'server-stopped'; data: { reason: string } }
  | {
      type: 'session-admitted';
      data: {
        name: string;
        code: number;
        tier: string;
        quota: number;
        protocolVersion: number;
        remote: string;
        /** [P-8] the client software the HELLO named, when it named one */
        client?: string;
        /** [P-60] the registered identity whose key the HELLO carried (absent: an anonymous session) */
        identity?: string;
        /** [P-64] the period the quota runs over, for a keyed session (absent: the session's own quota) */
        period?: string;
      };
    }
  | {
      type: 'connection-rejected';
      data: {
        reason: string;
        occupancy: Occupancy;
        remote: string;
        supported?: number[];
        /** [P-62] the registered name a refused key claimed (its key id's owner), never the key itself */
        identity?: string;
        /** [P-62] the key id a refused key carried, when it had the form of a key */
        keyId?: string;
      };
    }
  /** a connection that went away before it was admitted or rejected (it never completed a HELLO) */
  | { type: 'connection-dropped'; data: { reason: string; remote: string } }
  | {
      type: 'image-served';
      data: { requestId: number; image: string; bytes: number; sha256: string; quotaUsed: number; quotaLimit: number };
    }
  | {
      type: 'request-refused';
      data: {
        requestId: number | null;
        command: string;
        code: string;
        reason: string;
        image?: string;
        /** the full length of a name too long to keep whole in `image` */
        imageLength?: number;
        /** what a name that is not in the catalog looked like it was trying (path-traversal, nul-byte, ...) */
        suspicious?: string;
        /** [P-49] how many identical refusals followed this one, each recorded by adding one here (absent: none) */
        repeats?: number;
        /** [P-49] when the last of them was recorded (ms since the epoch), and its request id */
        lastAt?: number;
        lastRequestId?: number | null;
        /** [P-49] requests refused rate-limited right after this one (any row of a session may carry this count) */
        rateLimited?: number;
        lastRateLimitedAt?: number;
      };
    }
  /** [P-35] a get answered not-modified: the client held the current image; nothing sent, nothing counted */
  | { type: 'image-not-modified'; data: { requestId: number; image: string; sha256: string } }
  | { type: 'quota-exhausted'; data: { requestId: number; image: string; quotaLimit: number } }
  /**
   * [P-42] an image stream that stopped before its END was written (drain-timeout, the client closed or reset, the
   * shutdown deadline, the file changed or failed mid-read): `bytes` as announced, `bytesSent` the image bytes the
   * connection took. The image-served before it does not count toward the quota.
   */
  | {
      type: 'transfer-incomplete';
      data: { requestId: number; image: string; bytes: number; bytesSent: number; reason: string };
    }
  /** [P-83] `node`: the node that held the session, when it was closed by another because that node was lost */
  | { type: 'session-closed'; data: { reason: string; node?: string } }
  /** [P-83] a node of the cluster stopped its heartbeat: another closed its sessions (how many) and freed its slots */
  | { type: 'node-lost'; data: { node: string; sessions: number; lastHeartbeatAt: number } }
  /**
   * [P-60] The registry of client identities (db/client-registry.ts projects it): written by `imgcache-server clients`
   * and read by running servers. `keyHash` is the SHA-256 of the key's secret (hex): the key itself is never stored.
   */
  | { type: 'client-registered'; data: { name: string; tier: string; keyId: string; keyHash: string } }
  | { type: 'client-key-rotated'; data: { name: string; keyId: string; keyHash: string } }
  | { type: 'client-tier-changed'; data: { name: string; tier: string; previousTier: string } }
  | { type: 'client-revoked'; data: { name: string } }
  /**
   * Facts the server could not keep while its history was unavailable (past the bound of db/event-log.ts), recorded
   * once it is back: how many, of which types, and the times (ms since the epoch) of the first and the last.
   */
  | { type: 'facts-lost'; data: { count: number; since: number; until: number; types: Record<string, number> } };

export type HistoryEventType = HistoryEvent['type'];

/** An event as read back: with its global position, its time, and the session (connection number) it belongs to. */
export type StoredEvent = HistoryEvent & {
  position: number;
  /** milliseconds since the epoch */
  at: number;
  /** the connection number the event belongs to, or null for server-wide events */
  session: number | null;
};

/** An event to append: what happened, to which session. The store stamps position and time. */
export type NewEvent = (HistoryEvent & { session: number | null; at?: number }) | AnswerRepeated;

/**
 * [P-49] Not a row of its own: recorded in place of an answer's event that is the same as the session's previous row
 * (the same refusal again), it adds one to that row's `repeats` and sets its `lastAt` and `lastRequestId`; in place
 * of a `rate-limited` refusal, it adds one to the previous row's `rateLimited` and sets its `lastRateLimitedAt`
 * (rowCommitter, db/row-committer.ts). So a flood of identical free requests is committed answer by
 * answer, and does not grow the history.
 */
export interface AnswerRepeated {
  type: 'answer-repeated';
  session: number;
  /**
   * `count` is the member of the previous row that counts it: `repeats` for the same refusal again, `rateLimited`
   * for a refusal rate-limited (whatever the row it is counted on).
   */
  data: { requestId: number | null; count: 'repeats' | 'rateLimited' };
  at?: number;
}
