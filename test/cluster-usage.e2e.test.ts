/**
 * The usage document of a cluster means what a single node's means for the same sessions [P-32]: the same sessions
 * played against two nodes on PostgreSQL and against one server on SQLite give documents that differ only in names,
 * times and order of session numbers (a node numbers from its own block), over the wire and from the `history`
 * command alike.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import type { UsageClient, UsageDocument } from '../src/protocol/usage-document.ts';
import { type Cluster, startCluster } from './helpers/cluster.ts';
import { runCommand, SERVER_BIN } from './helpers/processes.ts';
import { makeTemporaryFolder, startTestServer, type TestServer } from './helpers/test-server.ts';

let cluster: Cluster;
let single: TestServer;

test.before(async () => {
  [cluster, single] = await Promise.all([
    startCluster({ nodes: 2, args: ['--codes', '108,950'] }),
    startTestServer({ codes: [108, 108, 950] }),
  ]);
});

test.after(async () => {
  await Promise.all([cluster?.stop(), single?.stop()]);
});

/**
 * The sessions: a bronze client gets one image and one that is not there and leaves; another bronze client uses up
 * its quota (three images, the fourth refused: the server closes); a platinum one reads the usage document.
 */
async function playSessions(first: number, second: number): Promise<UsageDocument> {
  const folder = makeTemporaryFolder('imgcache-client-');
  const a = await ImgcacheClient.connect({ port: first });
  await downloadImage(a, 'sunset.png', folder);
  await downloadImage(a, 'nope.png', folder).catch(() => undefined);
  await a.exit();
  const b = await ImgcacheClient.connect({ port: second });
  for (let index = 0; index < 4; index++) await downloadImage(b, 'mandelbrot.png', folder).catch(() => undefined);
  const c = await ImgcacheClient.connect({ port: first });
  assert.is(c.welcome.session.tier, 'platinum');
  const usage = (await c.usage()) as UsageDocument;
  await c.exit();
  return usage;
}

/** What a document means: its clients in the order they came, with names, times and numbers left out. */
function meaning(document: UsageDocument): unknown {
  const clients = [...document.clients].sort((x, y) => x.connectedAt.localeCompare(y.connectedAt));
  return {
    clients: clients.map(({ name: _name, connectedAt: _at, disconnectedAt, requests, ...rest }: UsageClient) => ({
      ...rest,
      closed: disconnectedAt !== null,
      requests: requests.map(({ at: _requestAt, ...request }) => request),
    })),
    rejected: document.rejected.map(({ at: _rejectedAt, ...rejection }) => rejection),
  };
}

test('the same sessions on two nodes and on one SQLite server: usage documents equal in meaning [P-32]', async () => {
  const [one, two] = cluster.nodes;
  if (!one || !two) throw new Error('two nodes');
  const fromCluster = await playSessions(await one.direct(), await two.direct());
  const fromSingle = await playSessions(single.port, single.port);
  assert.is(fromCluster.clients.length, 3);
  assert.equal(meaning(fromCluster), meaning(fromSingle));

  // the same document from the history, without the protocol: `imgcache-server history`
  const exported = await runCommand(SERVER_BIN, ['history', '--history', cluster.history]);
  assert.is(exported.status, 0, exported.stderr);
  const exportedSingle = await runCommand(SERVER_BIN, ['history', '--database', single.database]);
  assert.is(exportedSingle.status, 0, exportedSingle.stderr);
  assert.equal(
    meaning(JSON.parse(exported.stdout) as UsageDocument),
    meaning(JSON.parse(exportedSingle.stdout) as UsageDocument),
  );
});

test.run();
