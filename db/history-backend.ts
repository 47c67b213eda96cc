/**
 * The history behind a server, whichever it is: an SQLite file (the default: today's code, wrapped) or a PostgreSQL
 * database shared by the nodes of a cluster (db/postgres/). What the server needs of it is here: the event log (its
 * group commits go to the file, or to PostgreSQL), the registry and its later events, each identity's quota used,
 * connection numbers, the closing of sessions a run left open, the usage document, and a clean stop.
 *
 * `--history` (or the older `--database`) names it: a postgres:// or postgresql:// URL is PostgreSQL, anything else
 * a file.
 */

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type BetterSqlite3 from 'better-sqlite3';
import type { Registry } from './client-registry.ts';
import { nextConnectionNumber } from './connection-numbers.ts';
import { EventLog, type EventLogOptions } from './event-log.ts';
import type { NewEvent, StoredEvent } from './events.ts';
import { type InstanceLock, lockHistory } from './instance-lock.ts';
import { openDatabase, type Synchronous } from './open-database.ts';
import { PostgresCommitter, postgresCondition } from './postgres/committer.ts';
import { ConnectionNumbers } from './postgres/connection-numbers.ts';
import * as pgStore from './postgres/history-store.ts';
import { isPostgresUrl, type Pool, redactUrl } from './postgres/pool.ts';
import { openHistoryPool } from './postgres/schema.ts';
import { postgresUsageChunks, usageExportOf } from './postgres/usage-export.ts';
import { closeOrphanedSessions } from './recover-sessions.ts';
import { identityUsageFromDatabase, loadRegistry, readRegistryEvents } from './registry-store.ts';
import { type UsageFilter, usageJsonChunksFromDatabase } from './usage-export.ts';
import { type UsageExport, UsageThreads } from './usage-threads.ts';
import { WorkerCommitter } from './worker-committer.ts';

export interface HistoryBackend {
  readonly kind: 'sqlite' | 'postgres';
  /** the file, or the URL without its password: safe to log */
  readonly location: string;
  /** the node name each event is stamped with (PostgreSQL), or null (SQLite: one server per file) */
  readonly node: string | null;
  /** the pool of a PostgreSQL history (cluster coordination shares it), or null */
  readonly pool: Pool | null;
  /** the instance lock held on an SQLite history file (db/instance-lock.ts), or null (PostgreSQL) */
  readonly lockFile: string | null;
  readonly log: EventLog;
  /** the registry of client identities as of the open */
  readonly registry: Registry;
  /**
   * registry events after a position, read at once (SQLite only: an unknown key id is looked up before the answer);
   * undefined on PostgreSQL, where the poll and the notifications catch up
   */
  readonly readRegistryEventsNow: ((position: number) => StoredEvent[]) | undefined;
  readRegistryEventsAfter(position: number): Promise<StoredEvent[]>;
  /** [P-64] images each identity has used in its current window */
  identityUsage(windowStartOf: (identity: string) => number | null): Promise<Map<string, number>>;
  /** the number of the next connection, taken (synchronous: it is called in the accept path) */
  nextConnectionNumber(): number;
  /** the number the next connection will get, not taken */
  peekConnectionNumber(): number;
  /** records a close for every session a previous run of this server (node) left open; how many */
  closeOrphanedSessions(reason: string): Promise<number>;
  /** records events before the server serves (server-started), and resolves once they are committed */
  recordAtStart(events: readonly NewEvent[]): Promise<void>;
  /** [P-46] an export of the usage document, chunk by chunk */
  usageExport(filter: UsageFilter | undefined, chunkBytes: number): UsageExport;
  /**
   * A clean stop: commits what is recorded, then `lastFacts`, retrying up to `graceMs` while the history fails,
   * then closes everything; resolves with the number of facts that could not be committed.
   */
  stop(lastFacts: readonly NewEvent[], graceMs: number): Promise<number>;
}

export interface HistoryBackendOptions {
  /** the file or the URL (`--history`, `--database`) */
  location: string;
  historySync: Synchronous;
  /** SQLite: commit on a worker thread */
  historyThread: boolean;
  /** PostgreSQL: this node's name ('' = `<hostname>-<pid>-<random>`) */
  nodeName: string;
  /** the event log's clock, health and late-facts listeners */
  log: Omit<EventLogOptions, 'background' | 'location' | 'condition'>;
  /** told of a background problem with the history's connections (PostgreSQL) */
  onProblem?: (error: Error) => void;
}

export function openHistoryBackend(options: HistoryBackendOptions): Promise<HistoryBackend> {
  return isPostgresUrl(options.location) ? openPostgresBackend(options) : openSqliteBackend(options);
}

/** A node's name: the one given, or `<hostname>-<pid>-<random>` (unique even for a process restarted with its pid). */
export function nodeName(given: string): string {
  return given !== '' ? given : `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * The history's instance lock, then the history opened: a second server, or a file with other names, is refused
 * before anything is written to it. The lock is released if the open fails.
 */
function lockAndOpen(
  file: string,
  options: Parameters<typeof openDatabase>[1],
): { lock: InstanceLock; database: BetterSqlite3.Database } {
  const lock = lockHistory(file);
  try {
    return { lock, database: openDatabase(file, options) };
  } catch (error) {
    lock.release();
    throw error;
  }
}

async function openSqliteBackend(options: HistoryBackendOptions): Promise<HistoryBackend> {
  const file = options.location;
  // A commit waits at most this long for a lock held by another process: the event loop waits with it.
  const busyTimeoutMs = 250;
  const synchronous = options.historySync;
  const { lock, database } = lockAndOpen(file, { busyTimeoutMs, synchronous, checkIntegrity: true });
  // Group commits run on a thread of their own (when asked): the event loop keeps serving meanwhile.
  const committer = options.historyThread ? new WorkerCommitter({ file, synchronous, busyTimeoutMs }) : undefined;
  try {
    await committer?.ready();
  } catch (error) {
    database.close();
    lock.release();
    throw error;
  }
  // [P-46] Usage documents are built on threads of their own, each with its own read-only connection.
  const usageThreads = new UsageThreads({ file });
  const log = new EventLog(database, { ...options.log, background: committer });
  let connectionNumber = nextConnectionNumber(database);
  return {
    kind: 'sqlite',
    location: file,
    node: null,
    pool: null,
    lockFile: lock.file,
    log,
    registry: loadRegistry(database),
    readRegistryEventsNow: (position) => readRegistryEvents(database, position),
    readRegistryEventsAfter: async (position) => readRegistryEvents(database, position),
    identityUsage: async (windowStartOf) => identityUsageFromDatabase(database, windowStartOf),
    nextConnectionNumber: () => connectionNumber++,
    peekConnectionNumber: () => connectionNumber,
    closeOrphanedSessions: async (reason) => closeOrphanedSessions(log, reason),
    recordAtStart: async (events) => log.recordNow(events),
    usageExport: (filter, chunkBytes) => usageThreads.export(filter, chunkBytes),
    async stop(lastFacts, graceMs) {
      await log.drain();
      await committer?.close();
      await usageThreads.close();
      if (lastFacts.length > 0) log.recordFact(lastFacts);
      const unrecorded = await log.finish(graceMs);
      database.close();
      lock.release();
      return unrecorded;
    },
  };
}

async function openPostgresBackend(options: HistoryBackendOptions): Promise<HistoryBackend> {
  const url = options.location;
  const location = redactUrl(url);
  const onProblem = options.onProblem ?? (() => undefined);
  const pool = await openHistoryPool(url, { max: 6, onError: onProblem });
  try {
    const node = nodeName(options.nodeName);
    const committer = new PostgresCommitter(pool, node);
    const log = new EventLog(null, { ...options.log, background: committer, location, condition: postgresCondition });
    const numbers = await ConnectionNumbers.open(pool, onProblem);
    const registry = await pgStore.loadRegistry(pool);
    const recordAtStart = (events: readonly NewEvent[]) =>
      new Promise<void>((resolve, reject) => log.record(events, (error) => (error ? reject(error) : resolve())));
    return {
      kind: 'postgres',
      location,
      node,
      pool,
      lockFile: null,
      log,
      registry,
      readRegistryEventsNow: undefined,
      readRegistryEventsAfter: (position) => pgStore.readRegistryEvents(pool, position),
      identityUsage: (windowStartOf) => pgStore.identityUsage(pool, windowStartOf),
      nextConnectionNumber: () => numbers.next(),
      peekConnectionNumber: () => numbers.peek(),
      async closeOrphanedSessions(reason) {
        const sessions = await pgStore.orphanedSessions(pool, node);
        if (sessions.length > 0) {
          await recordAtStart(sessions.map((session) => ({ type: 'session-closed', session, data: { reason } })));
        }
        return sessions.length;
      },
      recordAtStart,
      usageExport: (filter, chunkBytes) =>
        usageExportOf(postgresUsageChunks(pool, filter ? { filter } : {}), chunkBytes),
      async stop(lastFacts, graceMs) {
        await log.drain();
        if (lastFacts.length > 0) log.recordFact(lastFacts);
        const unrecorded = await log.finish(graceMs);
        await committer.close();
        await pool.end();
        return unrecorded;
      },
    };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
}

/** [P-32] The usage document of a history, as pieces of JSON text (the `history` command). */
export async function* usageChunksOf(location: string, filter?: UsageFilter): AsyncGenerator<string, void, undefined> {
  if (!isPostgresUrl(location)) {
    yield* usageFromFile(location, filter);
    return;
  }
  const pool = await openHistoryPool(location, { max: 1 });
  try {
    yield* postgresUsageChunks(pool, filter ? { filter } : {});
  } finally {
    await pool.end();
  }
}

/** [P-32] The usage document of a history file, as pieces of JSON text. */
export function* usageFromFile(file: string, filter?: UsageFilter): Generator<string> {
  // A connection of its own per export: a long export never blocks appends, and WAL gives it a consistent snapshot.
  const reader = openDatabase(file, { readonly: true });
  try {
    yield* usageJsonChunksFromDatabase(reader, filter ? { filter } : {});
  } finally {
    reader.close();
  }
}
