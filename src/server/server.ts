/**
 * The imgcache server: opens the history, loads the catalog, starts the admission actor, and hands every accepted
 * connection to the glue. `handle()` takes any Duplex, so the TCP listener is just one adapter.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type Database from 'better-sqlite3';
import { createActor } from 'xstate';
import { nextConnectionNumber } from '../../db/connection-numbers.ts';
import { EventLog } from '../../db/event-log.ts';
import type { NewEvent } from '../../db/events.ts';
import { type InstanceLock, lockHistory } from '../../db/instance-lock.ts';
import { openDatabase } from '../../db/open-database.ts';
import { closeOrphanedSessions } from '../../db/recover-sessions.ts';
import { identityUsageFromDatabase, loadRegistry, readRegistryEvents } from '../../db/registry-store.ts';
import { type UsageFilter, usageJsonChunksFromDatabase } from '../../db/usage-export.ts';
import { UsageThreads } from '../../db/usage-threads.ts';
import { WorkerCommitter } from '../../db/worker-committer.ts';
import { admissionMachine } from '../../machines/admission.machine.ts';
import { resolveConfig, type ServerConfig, tlsEnabled } from '../config.ts';
import { AccessControl } from '../identity/access-control.ts';
import { type Logger, silentLogger } from '../logger.ts';
import { CLOSE_LINGER_MS, PROTOCOL_VERSIONS, type ServerLimits } from '../protocol/messages.ts';
import { type CodeSource, sequenceOfCodes } from './code-source.ts';
import { Connection } from './connection.ts';
import { historyOutageLog } from './history-outage-log.ts';
import { ImageCatalog } from './image-catalog.ts';
import { ReplyWriter } from './reply-writer.ts';
import type { ServerContext } from './server-context.ts';
import { rejectionEvent } from './session-recorder.ts';
import { type BeforeTlsOutcome, loadTlsContext, tlsConnectionHandler } from './tls-listener.ts';

export const SERVER_VERSION = '0.1.0';

type SlotRefusal = NonNullable<ReturnType<ServerContext['claimSlot']>>;

export interface ServerDependencies {
  /** where client codes come from; default: the configured sequence, or cryptographically random codes */
  codeSource?: CodeSource;
  logger?: Logger;
  /** told of every history event once it is committed (after the log line): monitoring, and tests awaiting events */
  onRecorded?: (events: readonly NewEvent[]) => void;
  /**
   * the wall clock, ms since the epoch (default Date.now): the history's timestamps and the windows of keyed quotas
   * [P-64] (tests move it to turn a period without sleeping)
   */
  now?: () => number;
}

/** [P-66] ms between two looks at the registry's events: a revocation or a tier change reaches the server in this. */
export const REGISTRY_POLL_MS = 250;

export interface ImgcacheServer {
  readonly config: Readonly<ServerConfig>;
  /** where the server listens (the real port when 0 was asked for) */
  readonly address: { host: string; port: number };
  /** serves one connection, whatever carries it */
  handle(stream: Duplex, remote: string): void;
  /** graceful shutdown [P-28]: REJECT shutting-down to newcomers, tell every client, record every close */
  close(): Promise<void>;
  /** open connections (admitted, in handshake, or lingering after a reject) and admitted sessions */
  stats(): { connections: number; sessions: number };
  /** the live image catalog [P-37]: its 'change' events tell when an added, replaced or removed image is seen */
  readonly catalog: ImageCatalog;
}

export function* usageFromFile(file: string, filter?: UsageFilter): Generator<string> {
  // A connection of its own per export: a long export never blocks appends, and WAL gives it a consistent snapshot.
  const reader = openDatabase(file, { readonly: true });
  try {
    yield* usageJsonChunksFromDatabase(reader, filter ? { filter } : {});
  } finally {
    reader.close();
  }
}

/**
 * The history's instance lock, then the history opened: a second server, or a file with other names, is refused
 * before anything is written to it. The lock is released if the open fails.
 */
function lockAndOpen(
  file: string,
  options: Parameters<typeof openDatabase>[1],
): { lock: InstanceLock; database: Database.Database } {
  const lock = lockHistory(file);
  try {
    return { lock, database: openDatabase(file, options) };
  } catch (error) {
    lock.release();
    throw error;
  }
}

export async function startServer(
  options: Partial<ServerConfig> = {},
  dependencies: ServerDependencies = {},
): Promise<ImgcacheServer> {
  const config = resolveConfig({}, {}, options);
  const logger = dependencies.logger ?? silentLogger;
  // [P-69] Read and checked before anything else: a certificate that cannot be used stops the start, history untouched.
  const secureContext = tlsEnabled(config) ? loadTlsContext(config.tlsCert, config.tlsKey) : null;
  const nextCode = dependencies.codeSource ?? sequenceOfCodes(config.codes);

  // A commit waits at most this long for a lock held by another process: the event loop waits with it.
  const busyTimeoutMs = 250;
  const synchronous = config.historySync;
  const { lock, database } = lockAndOpen(config.database, { busyTimeoutMs, synchronous });
  // Group commits run on a thread of their own (unless told otherwise): the event loop keeps serving meanwhile.
  const committer = config.historyThread
    ? new WorkerCommitter({ file: config.database, synchronous, busyTimeoutMs })
    : undefined;
  try {
    await committer?.ready();
  } catch (error) {
    database.close();
    lock.release();
    throw error;
  }
  let logEvents: (events: readonly NewEvent[]) => void = () => {};
  // [P-46] Usage documents are built on threads of their own, each with its own read-only connection.
  const usageThreads = new UsageThreads({ file: config.database });
  const now = dependencies.now ?? Date.now;
  const history = new EventLog(database, {
    now,
    background: committer,
    onHealth: historyOutageLog(logger),
    // Facts committed after the history came back are logged and announced then, in their order.
    onLateFacts: (events) => logEvents(events),
  });
  const orphans = closeOrphanedSessions(database, 'server-restart');
  if (orphans > 0)
    logger.warn({ sessions: orphans }, 'closed sessions left open by an earlier run that did not stop cleanly');
  const catalog = new ImageCatalog(config.cacheDir, config.memoryBudgetBytes, {
    rescanMs: config.catalogRescanMs,
  });
  // [P-38] Said once per file (again only if it is fixed and comes back): why a file that looks like an image is not.
  catalog.on('skipped', (skipped) => logger.warn(skipped, 'image catalog: file not served'));
  catalog.load();
  catalog.on('change', (change) => logger.info(change, 'catalog-changed'));
  catalog.on('problem', (error) => logger.warn({ err: error }, 'image catalog: cannot watch or read the folder'));
  catalog.watch(); // [P-37]
  // [P-60] [P-64] The registry, projected from its events, and each identity's quota used in its current window,
  // rebuilt from the history: a keyed quota survives restarts.
  const access = new AccessControl({
    mode: config.access,
    tiers: config.tiers,
    anonymousTier: config.anonymousTier,
    registry: loadRegistry(database),
    readEventsAfter: (position) => readRegistryEvents(database, position),
    onChange: (change) => {
      logger.info({ client: change.name, change: change.kind }, 'registry-changed');
      if (change.kind === 'revoked') admission.send({ type: 'REVOKE_IDENTITY', identity: change.name });
    },
  });
  if (config.access !== 'open') {
    const startedAt = now();
    const windowStartOf = (identity: string) => access.windowStartOf(identity, startedAt);
    for (const [identity, used] of identityUsageFromDatabase(database, windowStartOf)) {
      const start = windowStartOf(identity);
      if (start !== null) access.ledger.set(identity, start, used);
    }
  }
  let connectionNumber = nextConnectionNumber(database);
  history.recordNow([
    {
      session: null,
      type: 'server-started',
      data: { version: SERVER_VERSION, pid: process.pid, capacity: config.capacity, nextConnection: connectionNumber },
    },
  ]);

  const limits: ServerLimits = {
    maxRequestBytes: config.maxRequestBytes,
    maxFrameBytes: config.maxFrameBytes,
    idleTimeoutMs: config.idleTimeoutMs,
  };
  const connections = new Map<number, Connection>();
  /** Every accepted stream until it is released, a session's after its graceful close too ([P-30]). */
  const streams = new Set<Duplex>();
  // [P-70] Every admitted session hears of a catalog change, by a NOTICE between its answers (coalesced per session).
  catalog.on('change', () => {
    for (const connection of connections.values()) connection.catalogChanged();
  });
  let slotRefusal: SlotRefusal | null = null;
  const admission = createActor(admissionMachine, {
    input: {
      capacity: config.capacity,
      retryAfterMs: config.retryAfterMs,
      maxHandshakes: config.maxHandshakes,
      maxHandshakesPerAddress: config.maxHandshakesPerAddress,
      reclaimIdleAfterMs: config.reclaimIdleAfterMs,
      maxSessionsPerIdentity: config.maxSessionsPerIdentity,
      sessionInput: {
        supportedVersions: PROTOCOL_VERSIONS,
        tiers: config.tiers,
        handshakeTimeoutMs: config.handshakeTimeoutMs,
        idleTimeoutMs: config.idleTimeoutMs,
      },
    },
  });

  const context: ServerContext = {
    config,
    catalog,
    history,
    serverName: `imgcache/${SERVER_VERSION}`,
    limits,
    nextCode,
    access,
    now,
    occupancy: () => ({ open: admission.getSnapshot().context.open, capacity: config.capacity }),
    claimSlot: (connection, identity) => {
      slotRefusal = null;
      admission.send({
        type: 'CLAIM_SLOT',
        connection,
        at: performance.now(),
        ...(identity === undefined ? {} : { identity }),
      });
      const refusal = slotRefusal as SlotRefusal | null;
      slotRefusal = null;
      return refusal;
    },
    replyWriter: (stream, onAbort, reportedProgressAt) =>
      new ReplyWriter(stream, {
        maxFrameBytes: config.maxFrameBytes,
        drainTimeoutMs: config.drainTimeoutMs,
        usageSource: (filter, chunkBytes) => usageThreads.export(filter, chunkBytes),
        onAbort,
        reportedProgressAt,
      }),
    logEvents: (events: readonly NewEvent[]) => {
      // At warn and above the line objects are not even built: this runs for every event.
      if (logger.isLevelEnabled('info')) {
        for (const event of events) {
          // [P-49] a repeat is a count on an earlier line: a flood of them is not a flood of log lines
          if (event.type === 'answer-repeated') logger.debug({ session: event.session, ...event.data }, event.type);
          else logger.info({ session: event.session, ...event.data }, event.type);
        }
      }
      if (events.length > 0) dependencies.onRecorded?.(events);
    },
    // The outage itself is logged once, by historyOutageLog; each answer it stops is only worth a debug line.
    logHistoryFailure: (error, connection) =>
      logger.debug({ code: (error as { code?: string }).code, session: connection }, 'answer not sent: no history'),
    logConnectionError: (error, connection, reason) =>
      logger.warn({ err: error, session: connection, reason }, 'connection dropped'),
    forget: (connection) => connections.delete(connection.number),
  };
  logEvents = context.logEvents;

  admission.on('admitted', (effect) => connections.get(effect.connection)?.admit(effect.session));
  // [P-43] delivered inside send(CLAIM_SLOT), read back by claimSlot
  admission.on('slot-refused', ({ occupancy, retryAfterMs, reason }) => {
    slotRefusal = { occupancy, retryAfterMs, reason: reason ?? 'server-full' };
  });
  admission.on('rejected', (effect) =>
    connections.get(effect.connection)?.rejectAtCapacity(effect.reason, effect.occupancy, effect.retryAfterMs),
  );
  admission.start();

  // [P-66] The `clients` commands write the registry through their own connection: look for their events often, through
  // the registry's partial index (one probe when nothing changed). A revoked identity's sessions are closed.
  const registryPoll =
    config.access === 'open'
      ? null
      : setInterval(() => {
          try {
            access.catchUp(); // changes are told to onChange above
          } catch (error) {
            logger.warn({ err: error }, 'cannot read the registry of clients; trying again');
          }
        }, REGISTRY_POLL_MS);
  registryPoll?.unref();

  /** `address` is the peer's without its port, for the bound on handshakes per address [P-43]. */
  function handle(stream: Duplex, remote: string, address: string = remote): void {
    if (admission.getSnapshot().status === 'done') {
      stream.destroy(); // stopped: the listener is closing
      return;
    }
    const number = connectionNumber++;
    const connection = new Connection(stream, number, remote, context);
    connections.set(number, connection);
    streams.add(stream);
    stream.once('close', () => {
      connections.delete(number);
      streams.delete(stream);
    });
    admission.send({ type: 'CONNECT', connection: number, address, at: performance.now() });
  }

  /** [P-54] [P-69] A connection that ended before its TLS began is on record, as one that ends in its HELLO is. */
  function recordEndBeforeTls(remote: string, outcome: BeforeTlsOutcome): void {
    if (admission.getSnapshot().status === 'done') return; // stopped: the history is closing
    const number = connectionNumber++;
    const events: NewEvent[] =
      outcome.kind === 'rejected'
        ? [rejectionEvent(number, remote, outcome.reason, outcome.occupancy)]
        : [{ session: number, type: 'connection-dropped', data: { reason: outcome.reason, remote } }];
    history.recordFact(events, (error) => {
      if (!error) context.logEvents(events);
    });
  }

  const listener = net.createServer(
    { allowHalfOpen: true, noDelay: true },
    secureContext
      ? tlsConnectionHandler({
          secureContext,
          firstByteTimeoutMs: config.handshakeTimeoutMs,
          maxWaiting: config.maxHandshakes,
          maxWaitingPerAddress: config.maxHandshakesPerAddress,
          handle,
          occupancy: context.occupancy,
          onEndedBeforeTls: recordEndBeforeTls,
        })
      : (socket) => handle(socket, `${socket.remoteAddress}:${socket.remotePort}`, socket.remoteAddress ?? ''),
  );
  listener.listen(config.port, config.host);
  await once(listener, 'listening');
  const bound = listener.address() as net.AddressInfo;
  logger.info(
    {
      host: bound.address,
      port: bound.port,
      images: catalog.size,
      database: config.database,
      historySync: config.historySync,
      capacity: config.capacity,
      access: config.access,
      tls: secureContext !== null,
    },
    'listening',
  );
  // [P-60] [P-69] Without TLS, keys off the loopback interface cross the network in clear: said at start.
  if (config.access !== 'open' && !secureContext && !isLoopback(bound.address)) {
    logger.warn(
      { host: bound.address, access: config.access },
      'clients send their keys in clear: give --tls-cert and --tls-key, or listen on a loopback address',
    );
  }

  /**
   * [P-30] A session closed by the shutdown still lingers after its last frame: the server reads and discards what the
   * client sends until it closes its side (or the linger time passes). Stopping before that would close sockets with
   * unread bytes (a RECEIVED sent before the client read the NOTICE), and the kernel's reset could wipe out the NOTICE.
   */
  async function lingeringReleased(): Promise<void> {
    if (streams.size === 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        for (const stream of streams) stream.destroy();
        resolve();
      };
      const timer = setTimeout(done, CLOSE_LINGER_MS);
      for (const stream of streams) {
        stream.once('close', () => {
          if (streams.size === 0) done();
        });
      }
    });
  }

  let closing: Promise<void> | null = null;
  async function shutdown(): Promise<void> {
    // [P-28] The listener keeps accepting while the sessions drain, only to answer REJECT shutting-down: a client
    // connecting meanwhile is told why, rather than refused by the kernel.
    const drained = new Promise<void>((resolve) => {
      if (admission.getSnapshot().status === 'done') return resolve();
      admission.subscribe({ complete: () => resolve() });
    });
    admission.send({ type: 'SHUTDOWN' });
    if (registryPoll) clearInterval(registryPoll);
    const grace = setTimeout(() => {
      for (const connection of connections.values()) connection.destroy();
    }, config.shutdownGraceMs);
    await drained;
    clearTimeout(grace);
    listener.close();
    await lingeringReleased();
    await catalog.close();
    await history.drain();
    await committer?.close();
    await usageThreads.close();
    // A fact, like every close before it: if the history is failing, the stop waits for it (up to the grace period)
    // to commit what it holds, in order, this last.
    history.recordFact([{ session: null, type: 'server-stopped', data: { reason: 'shutdown' } }]);
    const unrecorded = await history.finish(config.shutdownGraceMs);
    if (unrecorded > 0) logger.error({ facts: unrecorded }, 'stopped with facts the history could not take: lost');
    database.close();
    lock.release();
    logger.info('stopped');
  }

  return {
    config,
    address: { host: bound.address, port: bound.port },
    handle,
    catalog,
    stats: () => ({ connections: connections.size, sessions: admission.getSnapshot().context.open }),
    close: () => {
      closing ??= shutdown();
      return closing;
    },
  };
}

/** Whether `host` is a loopback address (127.0.0.0/8, ::1): keys sent to it never cross a network. */
function isLoopback(host: string): boolean {
  return host === '::1' || host.startsWith('127.') || host === '::ffff:127.0.0.1' || host === 'localhost';
}
