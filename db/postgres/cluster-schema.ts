/**
 * Migration 2 of a PostgreSQL history: what the nodes of a cluster share besides the events ([P-82]-[P-86]).
 *
 * - `nodes`: every running node and its last heartbeat, on the database's clock (nodes' clocks may differ).
 * - `open_sessions`: one row per session slot taken anywhere in the cluster; the capacity and each identity's session
 *   limit are counted here, under an advisory lock (db/postgres/cluster-slots.ts).
 * - `identity_usage`: images each keyed identity used in each quota window, reserved one at a time
 *   (db/postgres/cluster-quota.ts).
 */
export const CLUSTER_MIGRATION = `
  CREATE TABLE nodes (
    node text PRIMARY KEY,
    started_at bigint NOT NULL,                     -- ms since the epoch, the node's own clock (for people)
    heartbeat_at timestamptz NOT NULL DEFAULT now() -- the database's clock: the only one lost nodes are judged by
  );
  CREATE TABLE open_sessions (
    session bigint PRIMARY KEY,                     -- the connection number
    node text NOT NULL,
    identity text,                                  -- the keyed identity, null for anonymous sessions
    claimed_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX open_sessions_by_node ON open_sessions (node);
  CREATE INDEX open_sessions_by_identity ON open_sessions (identity) WHERE identity IS NOT NULL;
  CREATE TABLE identity_usage (
    identity text NOT NULL,
    window_start bigint NOT NULL,                   -- ms since the epoch: the start of the quota's period
    used integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (identity, window_start)
  );
`;
