/**
 * [P-82]-[P-86] A node of a cluster whose history is on PostgreSQL: it registers itself, beats its heartbeat, closes
 * the nodes it finds lost, claims and frees session slots in the shared table, reserves keyed quota images, and
 * listens for registry changes. What it records itself (a lost node's closes) it tells `onRecorded`, as the node's
 * own history tells its commits.
 */
import type { NewEvent } from '../../db/events.ts';
import {
  beatHeart,
  closedOnRecord,
  closeLostNodes,
  registerNode,
  unregisterNode,
} from '../../db/postgres/cluster-nodes.ts';
import { giveBackQuotaImage, quotaUsed, reserveQuotaImage } from '../../db/postgres/cluster-quota.ts';
import { listenForRegistry, type RegistryListener } from '../../db/postgres/cluster-registry-listener.ts';
import { claimClusterSlot, releaseClusterSlots } from '../../db/postgres/cluster-slots.ts';
import type { Pool } from '../../db/postgres/pool.ts';
import type { QuotaWindow } from '../identity/access-control.ts';
import type { ClusterCoordinator, ImageReservation, SlotRefusal } from './coordinator.ts';
import { PendingReleases } from './pending-releases.ts';

export interface PostgresCoordinatorOptions {
  pool: Pool;
  /** the history's URL: the registry listener opens a connection of its own */
  url: string;
  node: string;
  capacity: number;
  maxSessionsPerIdentity: number;
  retryAfterMs: number;
  heartbeatMs: number;
  lostAfterMs: number;
  /** the wall clock, ms since the epoch */
  now: () => number;
  /** events this node recorded outside its history's log (a lost node's closes): log and announce them */
  onRecorded: (events: readonly NewEvent[]) => void;
  /** [P-83] this node was declared lost by another: end every session now, without recording their ends again */
  onLostSelf: () => void;
  /** [P-86] a registry change was announced: read the registry now */
  onRegistryChange: () => void;
  /** the cluster could not be reached for a heartbeat, a release or the registry listener (it keeps trying) */
  onProblem: (error: Error, what: string) => void;
  /** a heartbeat reached the history after one failed: the problems told by `onProblem` are over (log it once) */
  onReachable?: () => void;
}

export class PostgresCoordinator implements ClusterCoordinator {
  readonly node: string;
  readonly #options: PostgresCoordinatorOptions;
  readonly #releases = new PendingReleases();
  /** [P-83] sessions whose close another node recorded, when it declared this one lost */
  readonly #closedElsewhere = new Set<number>();
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;
  /** [P-83] since when (monotonic ms) every heartbeat of this node has reached the history; null after a failure */
  #inTouchSince: number | null = performance.now();
  #flushing = false;
  #listener: RegistryListener | null = null;
  #closed = false;

  private constructor(options: PostgresCoordinatorOptions) {
    this.#options = options;
    this.node = options.node;
  }

  /** Registers the node (freeing the slots an earlier run under its name held), then beats and listens. */
  static async start(options: PostgresCoordinatorOptions): Promise<PostgresCoordinator> {
    const coordinator = new PostgresCoordinator(options);
    await registerNode(options.pool, options.node, options.now());
    coordinator.#listener = listenForRegistry({
      url: options.url,
      onChange: options.onRegistryChange,
      onProblem: (error) => options.onProblem(error, 'registry listener'),
    });
    await coordinator.#listener.ready;
    coordinator.#timer = setInterval(() => {
      coordinator.#beating ??= coordinator.#beat().finally(() => {
        coordinator.#beating = null;
      });
    }, options.heartbeatMs);
    coordinator.#timer.unref();
    return coordinator;
  }

  claimSlot(session: number, identity: string | undefined): Promise<SlotRefusal | null> {
    const { pool, node, capacity, maxSessionsPerIdentity, retryAfterMs } = this.#options;
    return claimClusterSlot(pool, { session, node, identity }, { capacity, maxSessionsPerIdentity }).then((verdict) => {
      if (verdict.kind === 'refused') return { reason: verdict.reason, occupancy: verdict.occupancy, retryAfterMs };
      this.#releases.held(session);
      return null;
    });
  }

  releaseSlot(session: number): void {
    this.#releases.release(session);
    this.#flush();
  }

  recorded(events: readonly NewEvent[]): void {
    if (this.#releases.recorded(events)) this.#flush();
  }

  reserveImage(window: QuotaWindow): Promise<ImageReservation> {
    return reserveQuotaImage(this.#options.pool, window, window.limit);
  }

  quotaUsed(window: QuotaWindow): Promise<number> {
    return quotaUsed(this.#options.pool, window);
  }

  giveBackImage(window: QuotaWindow): void {
    giveBackQuotaImage(this.#options.pool, window).catch((error: Error) => {
      // The count stays one too high for the rest of the window: the client loses one image, never gains one.
      this.#options.onProblem(error, 'quota give-back');
    });
  }

  closedElsewhere(session: number): boolean {
    return this.#closedElsewhere.has(session);
  }

  /** Sends the due releases; those that fail are tried again at the next heartbeat. */
  #flush(): void {
    if (this.#flushing || this.#closed) return;
    const sessions = this.#releases.take();
    if (sessions.length === 0) return;
    this.#flushing = true;
    releaseClusterSlots(this.#options.pool, sessions).then(
      () => {
        this.#flushing = false;
        this.#flush(); // the releases that came due meanwhile
      },
      (error: Error) => {
        this.#flushing = false;
        this.#releases.failed(sessions);
        this.#options.onProblem(error, 'slot release');
      },
    );
  }

  async #beat(): Promise<void> {
    const { pool, node, lostAfterMs, now, onRecorded, onLostSelf, onProblem } = this.#options;
    try {
      if (!(await beatHeart(pool, node))) {
        // [P-83] Declared lost while cut off: the closes of the sessions it held then are on record already, their
        // slots freed (a session admitted since is closed on record here, as any).
        for (const session of await closedOnRecord(pool, this.#releases.forgetAll()))
          this.#closedElsewhere.add(session);
        onLostSelf();
        await registerNode(pool, node, now());
      }
      // [P-83] Others are judged only by a node in touch with the history for the lost time itself: after an outage of
      // PostgreSQL every heartbeat is old, and the first node back must not take the others for lost.
      const at = performance.now();
      if (this.#inTouchSince === null) {
        this.#inTouchSince = at;
        this.#options.onReachable?.();
      }
      if (at - this.#inTouchSince >= lostAfterMs) {
        const lost = await closeLostNodes(pool, node, lostAfterMs, now());
        if (lost.length > 0) onRecorded(lost);
      }
    } catch (error) {
      this.#inTouchSince = null;
      onProblem(error as Error, 'heartbeat'); // every time: the operator port's health counts them [P-90]
    }
    this.#flush();
  }

  /** Leaves the cluster: the node's row and whatever slot it still holds (its sessions' ends are on record). */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer) clearInterval(this.#timer);
    await this.#beating;
    this.#closed = true;
    await this.#listener?.close();
    try {
      await unregisterNode(this.#options.pool, this.node);
    } catch (error) {
      // The others will find it lost and close what it held.
      this.#options.onProblem(error as Error, 'leaving the cluster');
    }
  }
}
