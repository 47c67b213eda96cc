/**
 * The seam between one node and the cluster it may belong to. The node's admission actor always owns its own count
 * of sessions (the local gate); a coordinator adds what the nodes must share: the cluster's gate for a session slot
 * [P-82], the release of that slot once the session's end is on record, and keyed quotas counted across nodes [P-85].
 *
 * Alone (an SQLite history) the local coordinator adds nothing and answers at once: the server behaves as before.
 * On PostgreSQL, src/cluster/postgres-coordinator.ts answers with promises.
 */
import type { NewEvent } from '../../db/events.ts';
import type { QuotaWindow } from '../identity/access-control.ts';
import type { Occupancy } from '../protocol/messages.ts';

export interface SlotRefusal {
  occupancy: Occupancy;
  retryAfterMs: number;
  reason: 'server-full' | 'too-many-sessions';
}

export interface ImageReservation {
  /** whether the image was counted (false: the identity's quota is used up across the cluster) */
  reserved: boolean;
  /** the identity's images in the window across the cluster, this one included when reserved */
  used: number;
}

export interface ClusterCoordinator {
  /** this node's name in the cluster; null when the node is alone */
  readonly node: string | null;
  /**
   * [P-82] The cluster's gate, once the node's own let the HELLO take a slot: null when the session got one. Alone,
   * null at once; in a cluster a promise, which rejects when the cluster cannot be asked (REJECT history-unavailable).
   */
  claimSlot(session: number, identity: string | undefined): Promise<SlotRefusal | null> | null;
  /** [P-82] A claim granted for a session that went away meanwhile, before anything was recorded of it. */
  releaseSlot(session: number): void;
  /** Told of every event committed by this node: a session's end on record frees its slot [P-82]. */
  recorded(events: readonly NewEvent[]): void;
  /**
   * [P-85] One image of a keyed quota reserved before it is served; null when no quota is shared (the node's own
   * ledger counts it as it is served). The promise rejects when the cluster cannot be asked.
   */
  reserveImage(window: QuotaWindow): Promise<ImageReservation> | null;
  /** [P-85] The identity's images in the window across the cluster; null when no quota is shared. */
  quotaUsed(window: QuotaWindow): Promise<number> | null;
  /** [P-85] A reserved image that was not served whole, or whose record failed, is given back. */
  giveBackImage(window: QuotaWindow): void;
  /** [P-83] Whether the session's close was recorded by another node (this one was declared lost): not again. */
  closedElsewhere(session: number): boolean;
  close(): Promise<void>;
}

/** A node alone: its admission actor and its ledger are the whole story. */
export const localCoordinator: ClusterCoordinator = {
  node: null,
  claimSlot: () => null,
  releaseSlot: () => {},
  recorded: () => {},
  reserveImage: () => null,
  quotaUsed: () => null,
  giveBackImage: () => {},
  closedElsewhere: () => false,
  close: async () => {},
};
