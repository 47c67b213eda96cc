/**
 * The cluster section of the benchmark's page (bench/cluster-bench.ts measures it). Pure: results in, markdown out.
 */
import type { ClusterBench } from './cluster-bench.ts';

const rate = (value: number) => Math.round(value).toLocaleString('en-US');

export function clusterSection(cluster: ClusterBench | undefined): string[] {
  if (cluster === undefined) return [];
  const title = '## Cluster: nodes on one PostgreSQL history';
  if ('skipped' in cluster) return [title, `Skipped: ${cluster.skipped}.`];
  const runs = [
    '| nodes | through | size | C | req/s | p50 ms | p99 ms | nodes CPU µs/req | errors |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...cluster.runs.map(
      (run) =>
        `| ${run.nodes} | ${run.through} | ${run.imageBytes / 1024} KiB | ${run.connections} | ${rate(run.requestsPerSecond)} | ${run.p50Ms.toFixed(2)} | ${run.p99Ms.toFixed(2)} | ${run.serverCpuMicrosPerRequest.toFixed(0)} | ${run.errors} |`,
    ),
  ].join('\n');
  const commits = [
    '| history | events per commit | ms per commit | events/s |',
    '| --- | --- | --- | --- |',
    ...cluster.commits.map(
      (cost) => `| ${cost.history} | ${cost.events} | ${cost.msPerCommit.toFixed(3)} | ${rate(cost.eventsPerSecond)} |`,
    ),
  ].join('\n');
  return [
    title,
    `Every node on this machine, against one PostgreSQL 15 on this machine (${cluster.postgresDurability}); one node ` +
      'straight, several behind HAProxy (TCP mode, PROXY v2, leastconn). Each session claims a slot in the ' +
      'cluster at its HELLO; every image served is one event, group-committed per node and turn. On one machine ' +
      'the nodes share its cores with PostgreSQL, HAProxy and the load generator: the rows show what a node and a ' +
      'commit cost, not how far several machines go.',
    runs,
    "A group commit of the event log (the server's own EventLog, one turn of records each waiting for its commit), " +
      "on PostgreSQL through the node's pool and on SQLite (the default `--history-sync normal`):",
    commits,
  ];
}
