/**
 * A whole imgcache cluster for an end-to-end test, made of real parts: a throwaway PostgreSQL, N `imgcache-server`
 * processes on it (each with its protocol port, its operator port and PROXY protocol v2 accepted from the loopback
 * address), and HAProxy in TCP mode in front of them. A test can kill a node with SIGKILL, stop and start
 * PostgreSQL, connect to one node directly (through a small relay that sends the PROXY header HAProxy would), and
 * read the history as an outsider does, with its own PostgreSQL connection.
 *
 * One cluster per test file: `stop()` ends everything; a test process that ends anyway (an exception, Ctrl-C, a kill)
 * kills what is left and removes the folder on its way out (./cleanup-on-exit.ts; `spawnServer` registers each node).
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import net from 'node:net';
import pg from 'pg';
import { downloadImage } from '../../client/download.ts';
import { type ConnectOptions, ImgcacheClient } from '../../client/imgcache-client.ts';
import { ServerError } from '../../src/protocol/index.ts';
import { cleanUpOnExit } from './cleanup-on-exit.ts';
import { type HaproxyNode, type RunningHaproxy, startHaproxy } from './haproxy.ts';
import { type PostgresInstance, startPostgres } from './postgres.ts';
import { type ServerProcess, spawnServer } from './processes.ts';
import { startTcpLink, type TcpLink } from './tcp-link.ts';
import { eventually, makeTemporaryFolder, SAMPLE_IMAGES } from './test-server.ts';

export interface ClusterOptions {
  /** nodes behind HAProxy (3 unless told) */
  nodes?: number;
  /** flags given to every node, after the cluster's own (e.g. ['--capacity', '3', '--codes', '108,950']) */
  args?: readonly string[];
  /** the folder of images each node serves, by its name (node-1, ...); the sample images unless told */
  cacheDir?: (node: string) => string;
  /** ms between two heartbeats of a node (short, so that tests see a node lost quickly) */
  heartbeatMs?: number;
  /** ms without a heartbeat after which the other nodes declare a node lost */
  lostAfterMs?: number;
  /** nodes (by name) that reach PostgreSQL through a link the test can cut (`ClusterNode.postgresLink`) */
  linkedToPostgres?: readonly string[];
}

export interface ClusterNode {
  /** node-1, node-2, ...: its --node-name, and its server's name in HAProxy */
  name: string;
  process: ServerProcess;
  port: number;
  operatorPort: number;
  /** every JSON line the node logged so far */
  logs: Array<Record<string, unknown>>;
  /** ends the node at once (SIGKILL), as a crash or a pulled cable would; resolves once it is gone */
  kill(): Promise<void>;
  /** GET /health on the operator port: its status code */
  health(): Promise<number>;
  /** a loopback port that leads to this node alone, with the PROXY v2 header HAProxy would send (client 127.0.0.1) */
  direct(): Promise<number>;
  /** its way to PostgreSQL, to cut it off PostgreSQL only (null unless `linkedToPostgres` names it) */
  postgresLink: TcpLink | null;
}

/** One row of the events table, its data parsed. */
export interface ClusterEvent {
  position: number;
  at: number;
  session: number | null;
  type: string;
  data: Record<string, unknown>;
  node: string | null;
}

export interface Cluster {
  postgres: PostgresInstance;
  /** the history's URL (--history) */
  history: string;
  nodes: ClusterNode[];
  haproxy: RunningHaproxy;
  /** where clients connect: HAProxy's frontend */
  port: number;
  /** the history as committed, read with a connection of the test's own */
  events(where?: string): Promise<ClusterEvent[]>;
  /** the sessions holding a slot in the cluster now (the table of open sessions) */
  slotsHeld(): Promise<number[]>;
  /** waits (up to `ms`) until the history holds what `holds` looks for; resolves with the events then */
  waitForHistory(holds: (events: ClusterEvent[]) => boolean, what: string, ms?: number): Promise<ClusterEvent[]>;
  /**
   * waits until every running node has logged a change of the registry for the client `name` (of the `kind` given:
   * registered, revoked, ...; any when none is)
   */
  waitForRegistry(name: string, ms?: number, kind?: string): Promise<void>;
  /** a client session (through HAProxy unless `port` says otherwise), closed by `closeClients` if still open */
  connect(options?: ConnectOptions): Promise<ImgcacheClient>;
  /**
   * closes every client `connect` opened that is still open, and waits until their closes are on record and no
   * session holds a slot (a test's clients all gone: the next test starts with the whole capacity)
   */
  closeClients(): Promise<void>;
  /** stops HAProxy, every node, the relays and PostgreSQL, and removes the temporary folder */
  stop(): Promise<void>;
}

/** Starts PostgreSQL, the nodes (in parallel) and HAProxy; resolves once every node is up and HAProxy listens. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const folder = makeTemporaryFolder('imgcache-cluster-');
  const forgetFolder = cleanUpOnExit(() => rmSync(folder, { recursive: true, force: true }));
  const postgres = await startPostgres();
  const history = await postgres.createDatabase('imgcache');
  const heartbeatMs = options.heartbeatMs ?? 200;
  const lostAfterMs = options.lostAfterMs ?? 1_000;
  const relays: net.Server[] = [];
  const links: TcpLink[] = [];
  const startNode = async (index: number): Promise<ClusterNode> => {
    const name = `node-${index}`;
    const postgresLink = options.linkedToPostgres?.includes(name) ? await startTcpLink(postgres.port) : null;
    if (postgresLink) links.push(postgresLink);
    const process = await spawnServer([
      '--history',
      postgresLink ? history.replace(`:${postgres.port}/`, `:${postgresLink.port}/`) : history,
      '--cache-dir',
      options.cacheDir?.(name) ?? SAMPLE_IMAGES,
      '--operator-port',
      '0',
      '--proxy-protocol-from',
      '127.0.0.1',
      '--node-name',
      name,
      '--node-heartbeat-ms',
      String(heartbeatMs),
      '--node-lost-after-ms',
      String(lostAfterMs),
      ...(options.args ?? []),
    ]);
    let operatorPort = 0;
    await eventually(() => {
      operatorPort = operatorPortOf(process.logs);
      return operatorPort > 0;
    }, `${name} logging its operator port`);
    let relay: Promise<number> | null = null;
    return {
      name,
      process,
      port: process.port,
      operatorPort,
      logs: process.logs,
      kill: async () => {
        if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill('SIGKILL');
        await process.exited;
      },
      postgresLink,
      health: async () => (await fetch(`http://127.0.0.1:${operatorPort}/health`)).status,
      direct: () => {
        relay ??= startProxyRelay(process.port).then(({ server, port }) => {
          relays.push(server);
          return port;
        });
        return relay;
      },
    };
  };
  const nodes: ClusterNode[] = [];
  let haproxy: RunningHaproxy | undefined;
  const reader = new pg.Pool({ connectionString: history, max: 2 });
  reader.on('error', () => {}); // PostgreSQL stopped by a test: the next query fails, the process lives on
  const stop = async (): Promise<void> => {
    await haproxy?.stop();
    await Promise.all(
      nodes.map(async (node) => {
        if (node.process.child.exitCode !== null || node.process.child.signalCode !== null) return;
        node.process.child.kill('SIGTERM');
        await Promise.race([node.process.exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
        node.process.child.kill('SIGKILL');
      }),
    );
    for (const relay of relays) relay.close();
    await Promise.all(links.map((link) => link.close()));
    await reader.end().catch(() => undefined);
    await postgres.stop();
    rmSync(folder, { recursive: true, force: true });
    forgetFolder();
  };
  try {
    const count = options.nodes ?? 3;
    nodes.push(...(await Promise.all(Array.from({ length: count }, (_, index) => startNode(index + 1)))));
    const backends: HaproxyNode[] = nodes.map((node) => ({
      name: node.name,
      host: '127.0.0.1',
      port: node.port,
      operatorPort: node.operatorPort,
    }));
    haproxy = await startHaproxy(folder, backends);
  } catch (error) {
    await stop();
    throw error;
  }
  const events = async (where = 'TRUE'): Promise<ClusterEvent[]> => {
    const result = await reader.query(
      `SELECT position, at, session, type, data, node FROM events WHERE ${where} ORDER BY position`,
    );
    return result.rows.map((row) => ({
      position: Number(row.position),
      at: Number(row.at),
      session: row.session === null ? null : Number(row.session),
      type: row.type as string,
      data: JSON.parse(row.data as string) as Record<string, unknown>,
      node: row.node as string | null,
    }));
  };
  const waitForHistory = async (
    holds: (events: ClusterEvent[]) => boolean,
    what: string,
    ms = 10_000,
  ): Promise<ClusterEvent[]> => {
    let seen: ClusterEvent[] = [];
    await until(
      async () => {
        seen = await events().catch(() => seen);
        return holds(seen);
      },
      `on record: ${what}`,
      ms,
    );
    return seen;
  };
  const slotsHeld = async (): Promise<number[]> =>
    (await reader.query('SELECT session FROM open_sessions ORDER BY session')).rows.map((row) => Number(row.session));
  const clients: ImgcacheClient[] = [];
  const frontend = haproxy.port;
  return {
    postgres,
    history,
    nodes,
    haproxy,
    port: haproxy.port,
    events,
    slotsHeld,
    waitForHistory,
    waitForRegistry: (name, ms = 5_000, kind) =>
      eventually(
        () =>
          nodes
            .filter((node) => node.process.child.exitCode === null && node.process.child.signalCode === null)
            .every((node) =>
              node.logs.some(
                (entry) =>
                  entry.msg === 'registry-changed' &&
                  entry.client === name &&
                  (kind === undefined || entry.change === kind),
              ),
            ),
        `every node told of the registry change of ${name}`,
        ms,
      ),
    connect: async (options = {}) => {
      const client = await ImgcacheClient.connect({ port: frontend, ...options });
      clients.push(client);
      return client;
    },
    closeClients: async () => {
      const names = clients.splice(0).map((client) => {
        client.close();
        return client.welcome.session.name;
      });
      let open: string[] = [];
      await waitForHistory((history) => {
        open = names.filter((name) => !closedOnRecord(history, name));
        return open.length === 0;
      }, 'the closes of the clients of the test').catch((error: Error) => {
        throw new Error(`${error.message} (not closed: ${open.join(', ')})`);
      });
      await until(async () => (await slotsHeld()).length === 0, 'every slot of the cluster free again');
    },
    stop,
  };
}

/** The session number the history gave the client named `name` (its admission), or null. */
export function sessionNamed(events: readonly ClusterEvent[], name: string): number | null {
  return events.find((event) => event.type === 'session-admitted' && event.data.name === name)?.session ?? null;
}

/** Whether the session of the client named `name` is closed on record. */
export function closedOnRecord(events: readonly ClusterEvent[], name: string): boolean {
  const session = sessionNamed(events, name);
  return session !== null && events.some((event) => event.type === 'session-closed' && event.session === session);
}

/**
 * A session of the given tier through HAProxy: nodes hand out their `--codes` in turn, so a client of another tier
 * says exit and the next one tries again (at most `attempts` sessions in all).
 */
export async function connectWithTier(cluster: Cluster, tier: string, attempts = 8): Promise<ImgcacheClient> {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const client = await cluster.connect();
    if (client.welcome.session.tier === tier) return client;
    await client.exit();
  }
  throw new Error(`no ${tier} session in ${attempts} tries`);
}

export interface ImageLoad {
  client: ImgcacheClient;
  /** the images received in full (END and SHA-256 checked), in order */
  received: string[];
  /** why gets failed: the ERROR's code, or 'closed' */
  refused: string[];
  /** settles when the load ends */
  done: Promise<void>;
}

/**
 * A client under load: gets `images` in turn, one after the other, until `stopped.now`, the connection closes or
 * `tries` gets were asked. After a failed get the load waits for `afterRefusal` and goes on, or ends when none is
 * given.
 */
export function loadImages(
  client: ImgcacheClient,
  images: readonly string[],
  stopped: { now: boolean },
  options: { tries: number; afterRefusal?: Promise<void> },
): ImageLoad {
  const folder = makeTemporaryFolder('imgcache-client-');
  const load: ImageLoad = { client, received: [], refused: [], done: Promise.resolve() };
  load.done = (async () => {
    for (let attempt = 0; attempt < options.tries && !stopped.now && !client.closed; attempt++) {
      const image = images[attempt % images.length] as string;
      try {
        await downloadImage(client, image, folder);
        load.received.push(image);
      } catch (error) {
        load.refused.push(error instanceof ServerError ? error.body.code : 'closed');
        if (!options.afterRefusal) return;
        await options.afterRefusal;
      }
    }
  })();
  return load;
}

/** `eventually` for a condition only a query can see: a query that fails counts as not yet; asked every 50 ms. */
export const until = (condition: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> =>
  eventually(() => condition().catch(() => false), what, ms, 50);

/** The operator port a node logged: a field `operatorPort`, or the `port` of a line about the operator port. */
function operatorPortOf(logs: ReadonlyArray<Record<string, unknown>>): number {
  for (const entry of logs) {
    if (typeof entry.operatorPort === 'number') return entry.operatorPort;
    if (typeof entry.msg === 'string' && /operator/i.test(entry.msg) && typeof entry.port === 'number') {
      return entry.port;
    }
  }
  return 0;
}

/**
 * A PROXY protocol v2 header for a TCP connection over IPv4 (command PROXY): the 12-byte signature, version 2 and
 * command 1, family INET and transport STREAM, the length (12), then the source and destination addresses and ports.
 */
export function proxyV2Header(source: net.AddressInfo, destination: net.AddressInfo): Buffer {
  const header = Buffer.alloc(28);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(header, 0);
  header[12] = 0x21;
  header[13] = 0x11;
  header.writeUInt16BE(12, 14);
  Buffer.from(source.address.split('.').map(Number)).copy(header, 16);
  Buffer.from(destination.address.split('.').map(Number)).copy(header, 20);
  header.writeUInt16BE(source.port, 24);
  header.writeUInt16BE(destination.port, 26);
  return header;
}

/** A loopback listener that relays each connection to `port`, first sending the PROXY header of its client. */
async function startProxyRelay(port: number): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port });
    const source = { address: client.remoteAddress ?? '127.0.0.1', port: client.remotePort ?? 0, family: 'IPv4' };
    upstream.write(proxyV2Header(source, client.address() as net.AddressInfo));
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}
