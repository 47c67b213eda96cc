/**
 * The imgcache server: opens the history, loads the catalog, starts the admission actor, and hands every accepted
 * connection to the glue. `handle()` takes any Duplex, so the TCP listener is just one adapter.
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { createActor } from 'xstate';
import type { HistoryLostError } from '../../db/errors.ts';
import type { EventLog } from '../../db/event-log.ts';
import type { NewEvent } from '../../db/events.ts';
import { heldFactsFile, heldFactsRecorded, readHeldFacts, removeHeldFacts } from '../../db/held-facts.ts';
import { type HistoryBackend, openHistoryBackend } from '../../db/history-backend.ts';
import { guardHistory, type HistoryGuard } from '../../db/history-guard.ts';
import { admissionMachine } from '../../machines/admission.machine.ts';
import { withoutClosesRecordedElsewhere } from '../cluster/closed-elsewhere.ts';
import { type ClusterCoordinator, localCoordinator, type SlotRefusal } from '../cluster/coordinator.ts';
import { PostgresCoordinator } from '../cluster/postgres-coordinator.ts';
import { CLUSTER_PROBLEM, problemLog, REGISTRY_PROBLEM } from '../cluster/problem-log.ts';
import { resolveConfig, type ServerConfig, tlsEnabled } from '../config.ts';
import { AccessControl } from '../identity/access-control.ts';
import { type Logger, silentLogger } from '../logger.ts';
import {
  CLOSE_LINGER_MS,
  MessageType,
  PROTOCOL_VERSIONS,
  type Reject,
  type ServerLimits,
} from '../protocol/messages.ts';
import { type CodeSource, sequenceOfCodes } from './code-source.ts';
import { Connection } from './connection.ts';
import { closeGracefully } from './graceful-close.ts';
import { historyOutageLog } from './history-outage-log.ts';
import { ImageCatalog } from './image-catalog.ts';
import { ServerMetrics } from './metrics.ts';
import {
  historyHealthTracker,
  type NodeHealth,
  type OperatorPort,
  repeatedCheckTracker,
  startOperatorPort,
} from './operator-port.ts';
import { type Peer, proxyHeaderReader } from './proxy-header-reader.ts';
import { proxySourceMatcher } from './proxy-protocol.ts';
import { ReplyWriter, writeJsonFrame } from './reply-writer.ts';
import type { ServerContext } from './server-context.ts';
import { rejectionEvent } from './session-recorder.ts';
import { type BeforeTlsOutcome, loadTlsContext, tlsConnectionHandler } from './tls-listener.ts';

export const SERVER_VERSION = '0.1.0';

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
  /**
   * told once the server has stopped because its history file was deleted or replaced, or its instance lock was
   * (the command exits non-zero); the server stops itself either way
   */
  onHistoryLost?: (error: HistoryLostError) => void;
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
  /** [P-90] where the operator port listens (the real port when 0 was asked for); null when it is off */
  readonly operator: { host: string; port: number } | null;
  /** why the server stopped itself (its history file or lock deleted or replaced), or null */
  readonly lost: HistoryLostError | null;
}

/** [P-32] The usage document of a history file, as pieces of JSON text. */
export { usageFromFile } from '../../db/history-backend.ts';

export async function startServer(
  options: Partial<ServerConfig> = {},
  dependencies: ServerDependencies = {},
): Promise<ImgcacheServer> {
  const config = resolveConfig({}, {}, options);
  const logger = dependencies.logger ?? silentLogger;
  // [P-69] Read and checked before anything else: a certificate that cannot be used stops the start, history untouched.
  const secureContext = tlsEnabled(config) ? loadTlsContext(config.tlsCert, config.tlsKey) : null;
  const nextCode = dependencies.codeSource ?? sequenceOfCodes(config.codes);

  let logEvents: (events: readonly NewEvent[]) => void = () => {};
  const now = dependencies.now ?? Date.now;
  // [P-90] The operator port's view of the node: metrics counted from what is recorded, health from the history's.
  const metrics =
    config.operatorPort === null
      ? null
      : new ServerMetrics({
          sessionsOpen: () => admission.getSnapshot().context.open,
          eventsWaiting: () => history.waitingEvents,
        });
  const historyHealth = historyHealthTracker();
  // [P-90] A node's heartbeat fails every --node-heartbeat-ms while PostgreSQL is out of reach, committing or not; a
  // busy machine may space the failures out, so one counts for a second at least.
  const heartbeats = repeatedCheckTracker(Math.max(2 * config.nodeHeartbeatMs, 1_000));
  const outageLog = historyOutageLog(logger);
  // The history: an SQLite file, or PostgreSQL shared by the nodes of a cluster (db/history-backend.ts).
  const backend = await openHistoryBackend({
    location: config.database,
    historySync: config.historySync,
    historyThread: config.historyThread,
    nodeName: config.nodeName,
    onProblem: (error) => logger.debug({ err: error }, 'history: a connection was lost (it is made again)'),
    log: {
      now,
      onHealth: (health) => {
        historyHealth.observe(health);
        outageLog(health);
      },
      ...(metrics ? { onCommitted: (durationMs: number) => metrics.commitObserved(durationMs) } : {}),
      // Facts committed after the history came back are logged and announced then, in their order.
      onLateFacts: (events) => logEvents(events),
    },
  });
  const history = backend.log;
  // A stop during an outage left facts beside the history: on record before anything of this run. Then the file
  // this server opened is guarded: deleted or replaced under it, the server stops (started once it serves).
  let guard: HistoryGuard | null = null;
  if (backend.kind === 'sqlite') {
    try {
      recordFactsLeftBehind(config.database, history, logger);
    } catch (error) {
      await backend.stop([], 0);
      throw error;
    }
    guard = fileGuard(config.database, backend.lockFile, logger);
  }
  const orphans = await backend.closeOrphanedSessions('server-restart');
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
    registry: backend.registry,
    readEventsAfter: backend.readRegistryEventsNow,
    onChange: (change) => {
      logger.info({ client: change.name, change: change.kind }, 'registry-changed');
      if (change.kind === 'revoked') admission.send({ type: 'REVOKE_IDENTITY', identity: change.name });
    },
  });
  if (config.access !== 'open') {
    const startedAt = now();
    const windowStartOf = (identity: string) => access.windowStartOf(identity, startedAt);
    for (const [identity, used] of await backend.identityUsage(windowStartOf)) {
      const start = windowStartOf(identity);
      if (start !== null) access.ledger.set(identity, start, used);
    }
  }

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
  const clusterProblems = problemLog(logger, CLUSTER_PROBLEM);
  const registryProblems = problemLog(logger, REGISTRY_PROBLEM);
  // [P-82]-[P-86] On PostgreSQL the node joins the cluster: shared slots, keyed quotas, lost nodes, registry news.
  const cluster: ClusterCoordinator =
    backend.pool && backend.node
      ? await PostgresCoordinator.start({
          pool: backend.pool,
          url: config.database,
          node: backend.node,
          capacity: config.capacity,
          maxSessionsPerIdentity: config.maxSessionsPerIdentity,
          retryAfterMs: config.retryAfterMs,
          heartbeatMs: config.nodeHeartbeatMs,
          lostAfterMs: config.nodeLostAfterMs,
          now,
          onRecorded: (events) => logEvents(events),
          onLostSelf: () => {
            logger.warn({ node: backend.node }, 'this node was declared lost: its sessions end now');
            for (const connection of connections.values()) connection.destroy('node-lost');
          },
          // [P-86] on a later turn: the first comes while the node starts, before the registry's reader is set up
          onRegistryChange: () => setImmediate(() => void catchUpRegistry()),
          onProblem: (error, what) => {
            if (what === 'heartbeat') heartbeats.failed(); // [P-90]
            clusterProblems.failed(error, what); // once, then at most a short line every 10 s
          },
          onReachable: () => clusterProblems.succeeded(),
        })
      : localCoordinator;
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
    // [P-83] a node declared lost does not record again the closes another node recorded
    history: cluster === localCoordinator ? history : withoutClosesRecordedElsewhere(history, cluster),
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
      // [P-82] The node's own gate first (it owns the node's count); then the cluster's, if there is one.
      return refusal ?? cluster.claimSlot(connection, identity);
    },
    cluster,
    catchUpRegistry: () => (backend.readRegistryEventsNow ? null : catchUpRegistry()),
    replyWriter: (stream, onAbort, reportedProgressAt) =>
      new ReplyWriter(stream, {
        maxFrameBytes: config.maxFrameBytes,
        drainTimeoutMs: config.drainTimeoutMs,
        usageSource: (filter, chunkBytes) => backend.usageExport(filter, chunkBytes),
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
      metrics?.observe(events);
      if (events.length > 0) dependencies.onRecorded?.(events);
      cluster.recorded(events); // [P-82] a session's end on record frees its slot in the cluster
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
  // [P-43] a handshake that gave its place to a newcomer: turned away as a CONNECT over the bound is (its session ends)
  admission.on('displaced', (effect) =>
    connections.get(effect.connection)?.rejectAtCapacity('too-many-handshakes', effect.occupancy, effect.retryAfterMs),
  );
  admission.start();

  // [P-66] The `clients` commands write the registry through their own connection: look for their events often, through
  // the registry's partial index (one probe when nothing changed). A revoked identity's sessions are closed. On
  // PostgreSQL the NOTIFY a command sends brings the change at once; the poll stays as the fallback for a notification
  // lost while the node's listening connection was down [P-86].
  const registryPoll = config.access === 'open' ? null : setInterval(() => void catchUpRegistry(), REGISTRY_POLL_MS);
  registryPoll?.unref();
  /** Reads the registry events recorded since the last look (changes are told to onChange above), one read at a time. */
  let registryRead: Promise<void> | null = null;
  let readAgain = false;
  function catchUpRegistry(): Promise<void> {
    if (registryRead) {
      readAgain = true; // a change announced during a read: read once more after it
      return registryRead;
    }
    registryRead = (async () => {
      do {
        readAgain = false;
        try {
          access.apply(await backend.readRegistryEventsAfter(access.registry.position));
          registryProblems.succeeded();
        } catch (error) {
          registryProblems.failed(error as Error, 'registry read'); // once, then at most a short line every 10 s
        }
      } while (readAgain);
      registryRead = null;
    })();
    return registryRead;
  }

  /** `address` is the peer's without its port, for the bound on handshakes per address [P-43]. */
  function handle(stream: Duplex, remote: string, address: string = remote): void {
    if (admission.getSnapshot().status === 'done') {
      stream.destroy(); // stopped: the listener is closing
      return;
    }
    let number: number;
    try {
      number = backend.nextConnectionNumber();
    } catch (error) {
      refuseUnnumbered(stream, remote, error as Error);
      return;
    }
    const connection = new Connection(stream, number, remote, address, context);
    connections.set(number, connection);
    streams.add(stream);
    stream.once('close', () => {
      connections.delete(number);
      streams.delete(stream);
    });
    admission.send({ type: 'CONNECT', connection: number, address, at: performance.now() });
  }

  /**
   * [P-26] A node on PostgreSQL that has been out of reach for a while has used every connection number it held: it
   * cannot number a newcomer, nor record it. The newcomer is still told why, at once (REJECT history-unavailable), and
   * the rejection is a fact of the history without a number, committed once the history is back, as every fact held.
   */
  function refuseUnnumbered(stream: Duplex, remote: string, error: Error): void {
    logger.warn({ err: error, remote }, 'connection refused: no connection number to give it');
    const occupancy = context.occupancy();
    const event = rejectionEvent(null, remote, 'history-unavailable', occupancy);
    streams.add(stream);
    stream.once('close', () => streams.delete(stream));
    history.recordFact([event], (recordError) => {
      if (!recordError) context.logEvents([event]);
      const body: Reject = {
        reason: 'history-unavailable',
        message: 'the server cannot record this connection in its history now; try again later',
        occupancy,
      };
      writeJsonFrame(stream, MessageType.REJECT, body);
      closeGracefully(stream, CLOSE_LINGER_MS);
    });
  }

  /**
   * [P-54] [P-69] [P-89] A connection that ended before its TLS began, or before its PROXY header was read, is on
   * record, as one that ends in its HELLO is.
   */
  function recordEndBeforeSession(remote: string, outcome: BeforeTlsOutcome): void {
    if (admission.getSnapshot().status === 'done') return; // stopped: the history is closing
    let number: number;
    try {
      number = backend.nextConnectionNumber();
    } catch {
      return; // the history has been out of reach for long: nothing could record it anyway
    }
    const events: NewEvent[] =
      outcome.kind === 'rejected'
        ? [rejectionEvent(number, remote, outcome.reason, outcome.occupancy)]
        : [{ session: number, type: 'connection-dropped', data: { reason: outcome.reason, remote } }];
    history.recordFact(events, (error) => {
      if (!error) context.logEvents(events);
    });
  }

  const accept: (socket: net.Socket, peer: Peer) => void = secureContext
    ? tlsConnectionHandler({
        secureContext,
        firstByteTimeoutMs: config.handshakeTimeoutMs,
        maxWaiting: config.maxHandshakes,
        maxWaitingPerAddress: config.maxHandshakesPerAddress,
        handle,
        occupancy: context.occupancy,
        onEndedBeforeTls: recordEndBeforeSession,
      })
    : (socket, peer) => handle(socket, peer.remote, peer.address);
  // [P-87] A balancer's connections begin with a PROXY v2 header, read before anything else (the TLS sniff too).
  const onConnection = proxyHeaderReader({
    trusted: proxySourceMatcher(config.proxyProtocolFrom),
    timeoutMs: config.handshakeTimeoutMs,
    next: accept,
    onDropped: (remote, reason) => recordEndBeforeSession(remote, { kind: 'dropped', reason }),
  });
  // Connections accepted before server-started is on record wait for it: it comes first in the history.
  let waitingForStart: net.Socket[] | null = [];
  const listener = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (waitingForStart) waitingForStart.push(socket);
    else onConnection(socket);
  });
  /**
   * A start that fails once the history is open (the port in use, the operator port's too) leaves nothing of this run
   * on record (server-started is recorded once the server listens), and releases the history and its lock.
   */
  const abandonStart = async (error: unknown): Promise<never> => {
    listener.close();
    for (const socket of waitingForStart ?? []) socket.destroy();
    guard?.stop();
    if (registryPoll) clearInterval(registryPoll);
    admission.stop();
    await catalog.close();
    await cluster.close();
    await backend.stop([], 0);
    throw error;
  };
  listener.listen(config.port, config.host);
  await once(listener, 'listening').catch(abandonStart);
  const bound = listener.address() as net.AddressInfo;
  let stopping = false;
  // [P-90] Down while the history cannot record, or the server stops: a balancer sends clients elsewhere.
  const named = cluster.node === null ? {} : { node: cluster.node };
  const nodeHealth = (): NodeHealth => {
    if (stopping) return { status: 'down', reason: 'shutting-down', ...named };
    if (historyHealth.failing(history.waitingEvents) || heartbeats.failing()) {
      return { status: 'down', reason: 'history-unavailable', ...named };
    }
    return { status: 'up', ...named };
  };
  let operatorPort: OperatorPort | null = null;
  if (metrics && config.operatorPort !== null) {
    operatorPort = await startOperatorPort({
      host: config.operatorHost,
      port: config.operatorPort,
      health: nodeHealth,
      metrics: () => metrics.text(),
      metricsContentType: metrics.contentType,
      onError: (error) => logger.warn({ err: error }, 'operator port: cannot answer'),
    }).catch(abandonStart);
    logger.info(operatorPort.address, 'operator port listening');
  }
  await recordStart(backend, config).catch(abandonStart);
  for (const socket of waitingForStart.splice(0)) onConnection(socket);
  waitingForStart = null;
  let lost: HistoryLostError | null = null;
  guard?.start((error) => {
    lost = error;
    logger.fatal({ history: backend.location, code: error.code, what: error.what }, error.message);
    history.refuse(error); // no answer is sent from now on: what it records would be lost
    void close()
      .catch((stopError: unknown) => logger.error({ err: stopError }, 'shutdown failed'))
      .finally(() => dependencies.onHistoryLost?.(error));
  });
  logger.info(
    {
      host: bound.address,
      port: bound.port,
      images: catalog.size,
      database: backend.location,
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
    stopping = true; // [P-90] the health says so at once
    guard?.stop();
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
    // [P-82] The sessions' closes on record, the node leaves the cluster (and frees any slot it still holds).
    await history.drain();
    await cluster.close();
    // The last fact, like every close before it: if the history is failing, the stop waits for it (up to the grace
    // period) to commit what it holds, in order, this last.
    const unrecorded = await backend.stop(
      [{ session: null, type: 'server-stopped', data: { reason: 'shutdown' } }],
      config.shutdownGraceMs,
    );
    const left = history.leftBehind;
    if (left && left.error === null) {
      logger.error(
        { facts: left.facts, file: left.file },
        'stopped during a history outage: the facts it could not record are kept in a file beside the history; ' +
          'the next start records them first',
      );
    } else if (unrecorded > 0) {
      // A PostgreSQL history has no file beside it (left null); a lost history's facts belong to a file that is gone.
      const why =
        left === null
          ? 'stopped with facts the history could not take: lost'
          : left.refused
            ? 'stopped with its history lost: facts not recorded'
            : 'stopped with facts the history could not take, nor the file beside it: lost';
      logger.error({ facts: unrecorded, ...(left ? { file: left.file, err: left.error } : {}) }, why);
    }
    await operatorPort?.close();
    logger.info('stopped');
  }

  function close(): Promise<void> {
    closing ??= shutdown();
    return closing;
  }

  return {
    config,
    address: { host: bound.address, port: bound.port },
    handle,
    catalog,
    operator: operatorPort?.address ?? null,
    stats: () => ({ connections: connections.size, sessions: admission.getSnapshot().context.open }),
    close,
    get lost() {
      return lost;
    },
  };
}

/** The run begins on record once the server listens: a start that fails records nothing. */
function recordStart(backend: HistoryBackend, config: ServerConfig): Promise<void> {
  return backend.recordAtStart([
    {
      session: null,
      type: 'server-started',
      data: {
        version: SERVER_VERSION,
        pid: process.pid,
        capacity: config.capacity,
        nextConnection: backend.peekConnectionNumber(),
      },
    },
  ]);
}

/** Facts an earlier stop could not record (db/held-facts.ts), committed in their order; their file removed. */
function recordFactsLeftBehind(file: string, history: EventLog, logger: Logger): void {
  const sideFile = heldFactsFile(file);
  if (!existsSync(sideFile)) return;
  const facts = readHeldFacts(sideFile);
  if (heldFactsRecorded(history.db, facts)) {
    // committed by a start that stopped before it removed the file: not twice
    removeHeldFacts(sideFile);
    return;
  }
  history.recordNow(facts);
  removeHeldFacts(sideFile);
  logger.warn(
    { facts: facts.length, file: sideFile },
    'facts an earlier stop could not record (the history was unavailable) are on record now, in their order',
  );
}

/** The guard of a history file and its lock (db/history-guard.ts); null when it cannot be watched. */
function fileGuard(file: string, lockFile: string | null, logger: Logger): HistoryGuard | null {
  if (lockFile === null) return null;
  try {
    return guardHistory(file, lockFile);
  } catch (error) {
    logger.warn({ err: error, history: file }, 'the history file cannot be watched: its loss would not be seen');
    return null;
  }
}

/**
 * Whether `host`, an address as the listener reports it (never a name), is a loopback one (127.0.0.0/8, also written
 * IPv4-mapped, or ::1): keys sent to it never cross a network.
 */
function isLoopback(host: string): boolean {
  return host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
}
