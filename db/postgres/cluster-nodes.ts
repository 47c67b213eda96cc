/**
 * [P-82] [P-83] The nodes of a cluster: each registers a row in `nodes` and beats its heartbeat there, on the
 * database's clock. A node whose heartbeat is older than the time that declares it lost is closed by whichever
 * surviving node looks first: in one transaction, with the lost node's row taken FOR UPDATE SKIP LOCKED (two
 * survivors never close it twice), every session it held that is on record as admitted and not closed gets its
 * `session-closed` (reason `node-lost`), its slots are freed, its row deleted and a `node-lost` event recorded.
 */
import type { NewEvent } from '../events.ts';
import type { EventRow } from '../row-committer.ts';
import { insertEvents } from './insert-events.ts';
import { inTransaction, type Pool, type PoolClient } from './pool.ts';

/**
 * Registers `node` (again, after a restart under the same name, or after it was declared lost). Slots an earlier
 * run under this name still held are freed: that run is over (its sessions' closes are recorded at start, as the
 * sessions it left open).
 */
export async function registerNode(pool: Pool, node: string, at: number): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query('DELETE FROM open_sessions WHERE node = $1', [node]);
    await client.query(
      `INSERT INTO nodes (node, started_at) VALUES ($1, $2)
       ON CONFLICT (node) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = now()`,
      [node, at],
    );
  });
}

/** One heartbeat; false when the node's row is gone (it was declared lost: it must end its sessions, register anew). */
export async function beatHeart(pool: Pool, node: string): Promise<boolean> {
  const result = await pool.query('UPDATE nodes SET heartbeat_at = now() WHERE node = $1', [node]);
  return (result.rowCount ?? 0) > 0;
}

/** [P-83] Of `sessions`, those whose close is on record (a node that declared this one lost recorded it). */
export async function closedOnRecord(pool: Pool, sessions: readonly number[]): Promise<number[]> {
  if (sessions.length === 0) return [];
  const { rows } = await pool.query<{ session: number }>(
    "SELECT DISTINCT session FROM events WHERE type = 'session-closed' AND session = ANY($1::bigint[])",
    [sessions],
  );
  return rows.map((row) => row.session);
}

/** A node leaving cleanly: its row and any slot it still holds (its sessions' ends are on record by then). */
export async function unregisterNode(pool: Pool, node: string): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query('DELETE FROM open_sessions WHERE node = $1', [node]);
    await client.query('DELETE FROM nodes WHERE node = $1', [node]);
  });
}

/**
 * Closes every node (other than `self`) silent for `lostAfterMs` or more; resolves with the events recorded. Nodes
 * another survivor is closing right now are skipped (it records them).
 */
export function closeLostNodes(pool: Pool, self: string, lostAfterMs: number, at: number): Promise<NewEvent[]> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query<{ node: string; heartbeat: number }>(
      `SELECT node, (extract(epoch FROM heartbeat_at) * 1000)::bigint AS heartbeat FROM nodes
       WHERE node <> $1 AND heartbeat_at < now() - make_interval(secs => $2::double precision / 1000)
       ORDER BY node FOR UPDATE SKIP LOCKED`,
      [self, lostAfterMs],
    );
    const events: NewEvent[] = [];
    for (const { node, heartbeat } of rows) {
      const closed = await closeSessionsOf(client, node, self, at);
      events.push(...closed);
      await client.query('DELETE FROM nodes WHERE node = $1', [node]);
      const lost: NewEvent = {
        session: null,
        type: 'node-lost',
        data: { node, sessions: closed.length, lastHeartbeatAt: heartbeat },
        at,
      };
      await recordEvents(client, [lost], self);
      events.push(lost);
    }
    return events;
  });
}

/**
 * Frees the slots `node` holds and records a `session-closed` (reason `node-lost`) for each of its sessions admitted
 * on record and not yet closed; `recorder` is the node that records it.
 */
async function closeSessionsOf(client: PoolClient, node: string, recorder: string, at: number): Promise<NewEvent[]> {
  const { rows } = await client.query<{ session: number }>(
    `WITH freed AS (DELETE FROM open_sessions WHERE node = $1 RETURNING session)
     SELECT session FROM freed
     WHERE EXISTS (SELECT 1 FROM events WHERE type = 'session-admitted' AND events.session = freed.session)
       AND NOT EXISTS (SELECT 1 FROM events WHERE type = 'session-closed' AND events.session = freed.session)
     ORDER BY session`,
    [node],
  );
  const events: NewEvent[] = rows.map(({ session }) => ({
    session,
    type: 'session-closed',
    data: { reason: 'node-lost', node },
    at,
  }));
  await recordEvents(client, events, recorder);
  return events;
}

async function recordEvents(client: PoolClient, events: readonly NewEvent[], node: string): Promise<void> {
  const rows = events.map(
    (event): EventRow => [event.at ?? Date.now(), event.session, event.type, JSON.stringify(event.data)],
  );
  await insertEvents(client, rows, node);
}
