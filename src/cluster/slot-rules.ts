/**
 * [P-82] The cluster's gate for a session slot, as a pure rule: given how many sessions are open across the cluster
 * and how many of them the HELLO's identity holds, a slot is claimed, or refused `server-full` (every slot taken) or
 * `too-many-sessions` ([P-65]: the identity holds all it may). The same order as the node's own gate: capacity first.
 */
import type { Occupancy } from '../protocol/messages.ts';

export interface SlotCounts {
  /** sessions open across the cluster */
  open: number;
  /** of them, those the HELLO's identity holds (0 for an anonymous HELLO) */
  heldByIdentity: number;
}

export interface SlotLimits {
  capacity: number;
  maxSessionsPerIdentity: number;
}

export type SlotVerdict =
  | { kind: 'claimed' }
  | { kind: 'refused'; reason: 'server-full' | 'too-many-sessions'; occupancy: Occupancy };

export function decideSlot(counts: SlotCounts, limits: SlotLimits, identity: string | undefined): SlotVerdict {
  const occupancy = { open: counts.open, capacity: limits.capacity };
  if (counts.open >= limits.capacity) return { kind: 'refused', reason: 'server-full', occupancy };
  if (identity !== undefined && counts.heldByIdentity >= limits.maxSessionsPerIdentity) {
    return { kind: 'refused', reason: 'too-many-sessions', occupancy };
  }
  return { kind: 'claimed' };
}
