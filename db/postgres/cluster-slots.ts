/**
 * [P-82] Session slots across the cluster: the table `open_sessions` holds one row per session admitted anywhere.
 * A claim reads the counts and inserts its row in one transaction under a transaction-level advisory lock, so that
 * HELLOs arriving at once on different nodes are judged one after the other: never more sessions than the capacity,
 * never more for one identity than it may hold ([P-65]). A slot is released once the session's end is on record.
 */
import { decideSlot, type SlotLimits, type SlotVerdict } from '../../src/cluster/slot-rules.ts';
import { inTransaction, type Pool } from './pool.ts';
import { ADVISORY_LOCKS } from './schema.ts';

export interface SlotClaim {
  session: number;
  node: string;
  /** the keyed identity of the HELLO, if any */
  identity: string | undefined;
}

export function claimClusterSlot(pool: Pool, claim: SlotClaim, limits: SlotLimits): Promise<SlotVerdict> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.slots]);
    // Read after the lock is taken: READ COMMITTED gives this statement a snapshot that holds every earlier claim.
    const { rows } = await client.query<{ open: number; held: number }>(
      'SELECT count(*)::int AS open, count(*) FILTER (WHERE identity = $1)::int AS held FROM open_sessions',
      [claim.identity ?? null],
    );
    const counts = { open: rows[0]?.open ?? 0, heldByIdentity: rows[0]?.held ?? 0 };
    const verdict = decideSlot(counts, limits, claim.identity);
    if (verdict.kind === 'claimed') {
      await client.query('INSERT INTO open_sessions (session, node, identity) VALUES ($1, $2, $3)', [
        claim.session,
        claim.node,
        claim.identity ?? null,
      ]);
    }
    return verdict;
  });
}

/** Frees the slots of sessions whose end is on record (a slot already freed is no error). */
export async function releaseClusterSlots(pool: Pool, sessions: readonly number[]): Promise<void> {
  if (sessions.length === 0) return;
  await pool.query('DELETE FROM open_sessions WHERE session = ANY($1::bigint[])', [sessions]);
}
