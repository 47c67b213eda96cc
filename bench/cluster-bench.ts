/**
 * The benchmark's cluster section: imgcache on a PostgreSQL history, one node straight and three nodes behind HAProxy
 * (TCP mode, PROXY v2) on this machine, against the same PostgreSQL, at one image size and concurrency; and what a
 * commit costs there beside SQLite (ms per group commit of 1 and of 64 events, the event log as the server uses it).
 * Skipped, with the reason said, when PostgreSQL or HAProxy is not installed.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { EventLog } from '../db/event-log.ts';
import { PostgresCommitter } from '../db/postgres/committer.ts';
import { openPool } from '../db/postgres/pool.ts';
import { migratePostgres } from '../db/postgres/schema.ts';
import { type RunningHaproxy, startHaproxy } from '../test/helpers/haproxy.ts';
import { POSTGRES_BIN, type PostgresInstance, startPostgres } from '../test/helpers/postgres.ts';
import type { BenchImage } from './bench-fixtures.ts';
import { measureEventLogCapacity, measureEventLogTurns } from './event-log-capacity.ts';
import type { LoadSettings, ServerRun } from './measure-run.ts';
import { measureRun } from './measure-run.ts';
import { cpuTimeMs, peakRssBytes, sumOver } from './proc-stats.ts';
import { freePort, type ServerProcess, startImgcacheServer } from './server-processes.ts';
import { commandVersion } from './system-packages.ts';

export interface CommitCost {
  history: 'SQLite' | 'PostgreSQL';
  /** events per group commit (records per event-loop turn) */
  events: number;
  /** ms per group commit, on average */
  msPerCommit: number;
  eventsPerSecond: number;
}

export type ClusterBench =
  | { skipped: string }
  | {
      /** req/s etc. of one node straight, then of three nodes behind HAProxy */
      runs: Array<ServerRun & { nodes: number; through: 'straight' | 'HAProxy' }>;
      commits: CommitCost[];
      /** PostgreSQL's settings for durability, as measured */
      postgresDurability: string;
    };

export interface ClusterBenchContext {
  workDir: string;
  imageDir: string;
  tiersFile: string;
  settings: LoadSettings;
  image: BenchImage;
  connections: number;
  /** ms each commit-cost measurement runs */
  commitMs: number;
  log: (line: string) => void;
}

/** Why the section cannot run here, or null. */
function missing(): string | null {
  if (!existsSync(path.join(POSTGRES_BIN, 'initdb'))) return `no PostgreSQL (${POSTGRES_BIN}/initdb)`;
  if (commandVersion('haproxy', ['-v']) === null) return 'no haproxy';
  return null;
}

export async function measureCluster(context: ClusterBenchContext): Promise<ClusterBench> {
  const reason = missing();
  if (reason !== null) {
    context.log(`cluster section skipped: ${reason}`);
    return { skipped: reason };
  }
  // PostgreSQL as it ships: fsync and synchronous commit on (a commit is on the disk when it returns).
  const postgres = await startPostgres({ durable: true });
  try {
    const commits = await measureCommitCosts(context, postgres);
    const runs: Array<ServerRun & { nodes: number; through: 'straight' | 'HAProxy' }> = [];
    for (const nodes of [1, 3]) {
      const history = await postgres.createDatabase(`bench_${nodes}_nodes`);
      const run = await measureNodes(context, history, nodes);
      runs.push({ ...run, nodes, through: nodes === 1 ? 'straight' : 'HAProxy' });
      context.log(`cluster, ${nodes} node(s): ${Math.round(run.requestsPerSecond)} req/s`);
    }
    return { runs, commits, postgresDurability: 'fsync on, synchronous_commit on' };
  } finally {
    await postgres.stop();
  }
}

async function measureCommitCosts(context: ClusterBenchContext, postgres: PostgresInstance): Promise<CommitCost[]> {
  const costs: CommitCost[] = [];
  const url = await postgres.createDatabase('bench_commits');
  const pool = openPool(url);
  try {
    await migratePostgres(pool, url);
    for (const events of [1, 64]) {
      const committer = new PostgresCommitter(pool, 'bench');
      const log = new EventLog(null, { background: committer, location: url });
      try {
        costs.push(costOf('PostgreSQL', await measureEventLogTurns(log, events, context.commitMs)));
      } finally {
        log.close();
        await committer.close();
      }
      const file = path.join(context.workDir, `commit-cost-${events}.sqlite`);
      costs.push(costOf('SQLite', await measureEventLogCapacity(file, events, context.commitMs)));
    }
  } finally {
    await pool.end();
  }
  for (const cost of costs)
    context.log(`commit of ${cost.events} on ${cost.history}: ${cost.msPerCommit.toFixed(3)} ms`);
  return costs;
}

function costOf(
  history: CommitCost['history'],
  measured: { callers: number; commitsPerSecond: number; eventsPerSecond: number },
): CommitCost {
  return {
    history,
    events: measured.callers,
    msPerCommit: 1000 / measured.commitsPerSecond,
    eventsPerSecond: measured.eventsPerSecond,
  };
}

/** `count` nodes on `history`; one is measured straight, several through HAProxy. */
async function measureNodes(context: ClusterBenchContext, history: string, count: number): Promise<ServerRun> {
  const behindHaproxy = count > 1;
  const nodes: ServerProcess[] = [];
  const operatorPorts: number[] = [];
  let haproxy: RunningHaproxy | null = null;
  try {
    for (let index = 1; index <= count; index++) {
      const operatorPort = await freePort();
      operatorPorts.push(operatorPort);
      nodes.push(
        await startImgcacheServer({
          cacheDir: context.imageDir,
          database: history,
          capacity: context.connections,
          tiersFile: context.tiersFile,
          logLevel: 'warn',
          serverOptions: [
            ...['--node-name', `bench-node-${index}`, '--operator-port', String(operatorPort)],
            ...(behindHaproxy ? ['--proxy-protocol-from', '127.0.0.1'] : []),
          ],
        }),
      );
    }
    let port = (nodes[0] as ServerProcess).port;
    if (behindHaproxy) {
      const folder = path.join(context.workDir, `haproxy-${count}`);
      mkdirSync(folder, { recursive: true });
      haproxy = await startHaproxy(
        folder,
        nodes.map((node, index) => ({
          name: `node-${index + 1}`,
          host: '127.0.0.1',
          port: node.port,
          operatorPort: operatorPorts[index] as number,
        })),
      );
      port = haproxy.port;
    }
    const pids = nodes.map((node) => node.pid);
    return await measureRun(
      {
        server: behindHaproxy ? `imgcache, ${count} nodes + HAProxy` : 'imgcache, 1 node',
        port,
        protocol: 'imgcache',
        target: context.image.name,
        // the nodes' CPU (not HAProxy's, not PostgreSQL's): comparable with the single server's figure
        cpuTimeMs: () => sumOver(pids, cpuTimeMs),
        peakRssBytes: () => Math.max(...pids.map(peakRssBytes)),
      },
      context.image,
      context.connections,
      context.settings,
    );
  } finally {
    await haproxy?.stop();
    for (const node of nodes) await node.stop();
  }
}
