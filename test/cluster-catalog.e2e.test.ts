/**
 * Nodes whose catalogs differ for a moment (a new sunset.png copied to one node's folder, not yet to the other's):
 * the hash decides [P-24] [P-34]. Each node serves and records its own copy with its own SHA-256, and a conditional
 * get is answered not-modified only by a node whose copy has the hash the client holds (docs/SCALING.md).
 */
import { copyFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { receiveImage } from '../client/download.ts';
import { type Cluster, sessionNamed, startCluster } from './helpers/cluster.ts';
import { copySampleImages } from './helpers/live-images.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

let cluster: Cluster;
const folders = new Map<string, string>();
/** the temporary folders of the nodes' copies, removed at the end */
const copies: string[] = [];

test.before(async () => {
  for (const node of ['node-1', 'node-2']) {
    const copy = copySampleImages();
    copies.push(copy.folder);
    folders.set(node, copy.images);
  }
  // node-2 already has the new sunset.png (here: other bytes under the same name); node-1 still the old one
  copyFileSync(
    path.join(folders.get('node-1') as string, 'checkerboard-dice.png'),
    path.join(folders.get('node-2') as string, 'sunset.png'),
  );
  cluster = await startCluster({ nodes: 2, args: ['--codes', '950'], cacheDir: (node) => folders.get(node) as string });
});

// uvu loses a test's failure when an after.each hook throws too: a cleanup that fails says so and lets it be seen
test.after.each(async () => {
  await cluster.closeClients().catch((error: Error) => console.error(`cleanup after the test: ${error.message}`));
});

test.after(async () => {
  await cluster?.stop();
  for (const folder of copies) rmSync(folder, { recursive: true, force: true });
});

test('two copies of one image on two nodes: each node serves and records its own hash; only a matching hash is not-modified [P-34]', async () => {
  const [one, two] = cluster.nodes;
  if (!one || !two) throw new Error('two nodes');
  const onOne = await cluster.connect({ port: await one.direct() });
  const onTwo = await cluster.connect({ port: await two.direct() });
  const listed = async (client: typeof onOne) =>
    (await client.list()).images.find((image) => image.name === 'sunset.png')?.sha256;
  const [oldHash, newHash] = [await listed(onOne), await listed(onTwo)];
  assert.ok(oldHash && newHash && oldHash !== newHash, 'each node lists the hash of its own copy');

  const cache = makeTemporaryFolder('imgcache-client-');
  const first = await receiveImage(onOne, 'sunset.png', cache);
  assert.is(first.status, 'downloaded');
  assert.is(first.sha256, oldHash);
  // the client holds the old copy: node-2 has another, so it sends its own, whole, with its hash
  const second = await receiveImage(onTwo, 'sunset.png', cache, { have: oldHash });
  assert.is(second.status, 'downloaded');
  assert.is(second.sha256, newHash);
  // now it holds node-2's copy: node-2 answers not-modified, node-1 sends its old copy again
  assert.is((await receiveImage(onTwo, 'sunset.png', cache, { have: newHash })).status, 'not-modified');
  const third = await receiveImage(onOne, 'sunset.png', cache, { have: newHash });
  assert.is(third.status, 'downloaded');
  assert.is(third.sha256, oldHash);

  // the history says which copy each client got
  const history = await cluster.events();
  const servedHashes = (client: typeof onOne) => {
    const session = sessionNamed(history, client.welcome.session.name);
    return history
      .filter((event) => event.type === 'image-served' && event.session === session)
      .map((event) => event.data.sha256);
  };
  assert.equal(servedHashes(onOne), [oldHash, oldHash]);
  assert.equal(servedHashes(onTwo), [newHash]);
});

test.run();
