/**
 * One server per history file: client names are numbered from the history, so a second server on the same file
 * would hand out names the first one also hands out. It is refused at start; a lock left by a killed server is not
 * an obstacle.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';

test('a second server on the same history is refused with history-in-use; after the first stops it starts', async () => {
  const folder = makeTemporaryFolder();
  const first = await startTestServer({ folder });
  const refused = await startTestServer({ folder }).then(
    () => null,
    (error: unknown) => error as { code?: string; message: string },
  );
  assert.is(refused?.code, 'history-in-use');
  assert.match(refused?.message ?? '', `pid ${process.pid}`);
  await first.stop();
  const second = await startTestServer({ folder });
  const client = await ImgcacheClient.connect({ port: second.port });
  await client.exit();
  await second.stop();
});

test('a lock left by a server that is gone (killed) is taken over', async () => {
  const folder = makeTemporaryFolder();
  const gone = spawnSync(process.execPath, ['-e', 'process.pid']).pid; // a process that has already exited
  writeFileSync(path.join(folder, 'history.sqlite.lock'), String(gone));
  const running = await startTestServer({ folder });
  const client = await ImgcacheClient.connect({ port: running.port });
  await client.exit();
  await running.stop();
});

test('a lock naming our own pid that this process does not hold (a restarted container) is taken over', async () => {
  const folder = makeTemporaryFolder();
  writeFileSync(path.join(folder, 'history.sqlite.lock'), String(process.pid));
  const running = await startTestServer({ folder });
  await running.stop();
});

test.run();
