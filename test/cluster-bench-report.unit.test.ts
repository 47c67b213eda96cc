/**
 * The benchmark's cluster section as the page shows it: the reason when it was skipped, else a row per run and a row
 * per commit cost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ClusterBench } from '../bench/cluster-bench.ts';
import { clusterSection } from '../bench/cluster-report.ts';
import type { ServerRun } from '../bench/measure-run.ts';

const run = (server: string, requestsPerSecond: number): ServerRun => ({
  server,
  connections: 64,
  imageBytes: 4096,
  seconds: 5,
  requests: requestsPerSecond * 5,
  requestsPerSecond,
  megabytesPerSecond: (requestsPerSecond * 4096) / 2 ** 20,
  p50Ms: 11.5,
  p99Ms: 60.25,
  maxMs: 90,
  serverCpuMicrosPerRequest: 151.4,
  serverCpuCores: 0.6,
  serverPeakRssBytes: 80 * 2 ** 20,
  generatorCpuCores: 0.5,
  otherCpuCores: 0.1,
  eventsPerSecond: null,
  errors: 0,
  firstErrors: [],
  reconnects: 0,
  windowMicros: [0, 5_000_000],
});

test('a skipped cluster section says why; results from before it have none', () => {
  assert.equal(clusterSection({ skipped: 'no haproxy' }).slice(1), ['Skipped: no haproxy.']);
  assert.equal(clusterSection(undefined), []);
});

test('a measured cluster section: one row per run and per commit cost', () => {
  const measured: ClusterBench = {
    runs: [
      { ...run('imgcache, 1 node', 3696), nodes: 1, through: 'straight' },
      { ...run('imgcache, 3 nodes + HAProxy', 3926), nodes: 3, through: 'HAProxy' },
    ],
    commits: [
      { history: 'PostgreSQL', events: 64, msPerCommit: 2.1714, eventsPerSecond: 29_480 },
      { history: 'SQLite', events: 64, msPerCommit: 0.4612, eventsPerSecond: 138_794 },
    ],
    postgresDurability: 'fsync on, synchronous_commit on',
  };
  const page = clusterSection(measured).join('\n\n');
  assert.match(page, '| 1 | straight | 4 KiB | 64 | 3,696 | 11.50 | 60.25 | 151 | 0 |');
  assert.match(page, '| 3 | HAProxy | 4 KiB | 64 | 3,926 |');
  assert.match(page, '| PostgreSQL | 64 | 2.171 | 29,480 |');
  assert.match(page, '| SQLite | 64 | 0.461 | 138,794 |');
  assert.match(page, 'fsync on, synchronous_commit on');
});

test.run();
