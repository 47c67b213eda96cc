/**
 * The one way event rows are inserted into a PostgreSQL history: a multi-row INSERT with a VALUES list of numbered
 * parameters, every row stamped with the node that records it. The group committer (committer.ts), the lost-node
 * sweep (cluster-nodes.ts) and the registry commands (history-store.ts) all build their INSERTs here, so a change to
 * the columns of `events` is made in this file only.
 */
import { type EventRow, eventRowJson } from '../row-committer.ts';
import type { PoolClient } from './pool.ts';

/** PostgreSQL takes at most 65,535 parameters per statement: 5 per row, so a long group goes in several INSERTs. */
export const ROWS_PER_INSERT = 2_000;

/**
 * [P-83] A session is closed on record once. A node cut off from PostgreSQL holds the closes of the sessions that
 * ended meanwhile, while another node may declare it lost and record their closes (`node-lost`); whichever reaches
 * the history second is not inserted. Closes are rare (one per session), so only an INSERT that holds one pays for the
 * check: its rows go through a SELECT that leaves out a close already on record (the partial index of closes makes it
 * one probe), and the unique index of closes (migration 3) settles two closes committed at the same moment.
 */
const CLOSE_NOT_ON_RECORD = `v.type <> 'session-closed'
  OR NOT EXISTS (SELECT 1 FROM events e WHERE e.type = 'session-closed' AND e.session = v.session)`;

/** Whether `rows` hold a close: their INSERT then has another text (a prepared statement's name must say so). */
export function holdsCloses(rows: readonly EventRow[]): boolean {
  return rows.some((row) => row[2] === 'session-closed');
}

/** The INSERT of `rows` in one statement, in their order; `node` stamps each (null: a command, not a node). */
export function insertEventsStatement(
  rows: readonly EventRow[],
  node: string | null,
): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const tuples: string[] = [];
  const closes = holdsCloses(rows);
  for (const [at, session, type, data] of rows) {
    const base = values.length;
    tuples.push(
      closes
        ? `($${base + 1}::bigint, $${base + 2}::bigint, $${base + 3}::text, $${base + 4}::text, $${base + 5}::text, ${tuples.length})`
        : `($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5})`,
    );
    values.push(at, session, type, eventRowJson(data), node);
  }
  const columns = 'events (at, session, type, data, node)';
  if (!closes) return { text: `INSERT INTO ${columns} VALUES ${tuples.join(', ')}`, values };
  // The rows keep their order (positions are taken as the sorted rows are inserted).
  return {
    text: `INSERT INTO ${columns} SELECT v.at, v.session, v.type, v.data, v.node
      FROM (VALUES ${tuples.join(', ')}) AS v (at, session, type, data, node, ord)
      WHERE ${CLOSE_NOT_ON_RECORD} ORDER BY v.ord ON CONFLICT DO NOTHING`,
    values,
  };
}

/** Inserts `rows` in order on `client` (inside the caller's transaction), ROWS_PER_INSERT to a statement. */
export async function insertEvents(
  client: Pick<PoolClient, 'query'>,
  rows: readonly EventRow[],
  node: string | null,
): Promise<void> {
  for (let start = 0; start < rows.length; start += ROWS_PER_INSERT) {
    await client.query(insertEventsStatement(rows.slice(start, start + ROWS_PER_INSERT), node));
  }
}
