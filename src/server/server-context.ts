/**
 * What every connection of one server shares: its configuration, catalog, history and the few services the
 * connection glue calls. Built once by the server (server.ts).
 */
import type { Duplex } from 'node:stream';
import type { NewEvent } from '../../db/events.ts';
import type { ClusterCoordinator, SlotRefusal } from '../cluster/coordinator.ts';
import type { ServerConfig } from '../config.ts';
import type { AccessControl } from '../identity/access-control.ts';
import type { Occupancy, ServerLimits } from '../protocol/messages.ts';
import type { ImageCatalog } from './image-catalog.ts';
import type { ReplyWriter, ReplyWriterOptions } from './reply-writer.ts';

/** db/event-log.ts: `record` for an answer's events (discarded on failure), `recordFact` for facts (kept). */
export interface HistoryRecorder {
  record(events: NewEvent[], done: (error: Error | null) => void): void;
  recordFact(events: NewEvent[], done?: (error: Error | null) => void): void;
}

export interface ServerContext {
  readonly config: Readonly<ServerConfig>;
  readonly catalog: ImageCatalog;
  readonly history: HistoryRecorder;
  readonly serverName: string;
  readonly limits: ServerLimits;
  nextCode(): number;
  /** [P-60]-[P-66] access modes, keys, keyed quotas */
  readonly access: AccessControl;
  /** the wall clock, ms since the epoch: the windows of keyed quotas [P-64] */
  now(): number;
  occupancy(): Occupancy;
  /**
   * [P-43] The connection's HELLO came: take a session slot for it. null when it got one; otherwise every slot is
   * taken, or the identity holds all the sessions it may [P-65], and this says what to tell the client (REJECT
   * server-full or too-many-sessions). [P-82] In a cluster, once the node's own gate let it by, the answer is a
   * promise: the cluster's gate (it rejects when the cluster cannot be asked).
   */
  claimSlot(connection: number, identity?: string): SlotRefusal | null | Promise<SlotRefusal | null>;
  /**
   * [P-60] [P-86] Reads the registry's events recorded since the last look, when the access control cannot read them
   * itself at once (a PostgreSQL history); null when it can (SQLite).
   */
  catchUpRegistry(): Promise<void> | null;
  /** [P-82]-[P-85] what the nodes of a cluster share (alone: the local coordinator, which adds nothing) */
  readonly cluster: ClusterCoordinator;
  replyWriter(
    stream: Duplex,
    onAbort: ReplyWriterOptions['onAbort'],
    reportedProgressAt?: ReplyWriterOptions['reportedProgressAt'],
  ): ReplyWriter;
  logEvents(events: readonly NewEvent[]): void;
  logHistoryFailure(error: Error, connection: number): void;
  logConnectionError(error: Error, connection: number, reason: string): void;
  forget(connection: { readonly number: number }): void;
}
