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

/** The INSERT of `rows` in one statement, in their order; `node` stamps each (null: a command, not a node). */
export function insertEventsStatement(
  rows: readonly EventRow[],
  node: string | null,
): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const tuples: string[] = [];
  for (const [at, session, type, data] of rows) {
    const base = values.length;
    tuples.push(`($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5})`);
    values.push(at, session, type, eventRowJson(data), node);
  }
  return { text: `INSERT INTO events (at, session, type, data, node) VALUES ${tuples.join(', ')}`, values };
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
