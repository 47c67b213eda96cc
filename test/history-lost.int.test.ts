/**
 * A history file deleted or replaced while the server runs, or its instance lock: the server says so in a fatal log
 * line, answers nothing more and stops (the command exits non-zero), rather than writing on into a file nobody will
 * read while a second server starts on the path and hands out the same client names.
 */
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import type { HistoryLostError } from '../db/errors.ts';
import { startServer } from '../src/server/server.ts';
import { spawnServer } from './helpers/processes.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** The server looks once a second: a loss unseen for this long is a bug. */
const GUARD_MS = 15_000;

test('the history file deleted under a running server: a fatal line says so, the server stops, exit 1', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'h.sqlite');
  const running = await spawnServer(['--history', database, '--cache-dir', SAMPLE_IMAGES]);
  try {
    const client = await ImgcacheClient.connect({ port: running.port });
    assert.ok((await client.list()).images.length > 0, 'served before the loss');
    for (const name of readdirSync(folder)) rmSync(path.join(folder, name), { force: true });
    const status = await within(running.exited, 'the server stops once its history is gone', GUARD_MS);
    assert.is(status, 1, 'the command fails');
    const fatal = running.logs.find((entry) => entry.level === 60);
    assert.ok(fatal, 'a fatal line');
    assert.is(fatal?.code, 'history-lost');
    assert.match(String(fatal?.msg), /deleted/);
    assert.match(String(fatal?.msg), database);
    const unrecorded = running.logs.find((entry) => entry.msg === 'stopped with its history lost: facts not recorded');
    assert.ok(Number(unrecorded?.facts) >= 2, "the client's close and server-stopped: said not recorded, not hidden");
    await within(
      client.list().then(
        () => assert.unreachable('a client is not served once the history is lost'),
        () => undefined,
      ),
      'the old connection is not served',
      GUARD_MS,
    );
    await ImgcacheClient.connect({ port: running.port }).then(
      () => assert.unreachable('nothing listens any more'),
      () => undefined,
    );
  } finally {
    running.child.kill('SIGKILL');
    rmSync(folder, { recursive: true, force: true });
  }
});

test('the instance lock replaced under a running server (another server took it): it stops, answering nothing more', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  let told: (error: HistoryLostError) => void = () => undefined;
  const stopped = new Promise<HistoryLostError>((resolve) => {
    told = resolve;
  });
  const server = await startServer(
    { host: '127.0.0.1', port: 0, cacheDir: SAMPLE_IMAGES, database },
    { onHistoryLost: (error) => told(error) },
  );
  try {
    const client = await ImgcacheClient.connect({ port: server.address.port });
    assert.ok((await client.list()).images.length > 0, 'served before the loss');
    writeFileSync(`${database}.lock`, '1 1\n');
    const error = await within(stopped, 'the server stops once its lock is replaced', GUARD_MS);
    assert.is(error.code, 'history-lost');
    assert.match(error.what, /lock .* was replaced/);
    assert.is(server.lost, error, 'the server says why it stopped');
    await client.list().then(
      () => assert.unreachable('a client is not served once the lock is lost'),
      () => undefined,
    );
  } finally {
    await server.close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
