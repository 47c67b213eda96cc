/**
 * A start that fails once the history is open (the port in use, the operator port in use) leaves nothing on record
 * for a server that never listened, no WAL files beside the history, and no instance lock: the next start is not
 * refused, and the history does not show a run that never served and never stopped.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer } from '../src/server/server.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { runCommand, SERVER_BIN } from './helpers/processes.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';

for (const historyThread of [false, true]) {
  test(`a port in use: nothing on record, no WAL, no lock left (history thread: ${historyThread})`, async () => {
    const taken = await startTestServer();
    const folder = makeTemporaryFolder();
    const database = path.join(folder, 'history.sqlite');
    try {
      const refused = await startServer({
        host: '127.0.0.1',
        port: taken.port,
        cacheDir: SAMPLE_IMAGES,
        database,
        historyThread,
      }).then(
        (): NodeJS.ErrnoException => assert.unreachable('the port is in use') as never,
        (error: unknown) => error as NodeJS.ErrnoException,
      );
      assert.is(refused.code, 'EADDRINUSE');
      assert.equal(readdirSync(folder), ['history.sqlite'], 'no -wal, -shm or .lock left behind');
      assert.equal(readHistoryFile(database), [], 'no server-started for a server that never listened');
      const next = await startServer({ host: '127.0.0.1', port: 0, cacheDir: SAMPLE_IMAGES, database });
      await next.close();
      assert.equal(
        readHistoryFile(database).map((event) => event.type),
        ['server-started', 'server-stopped'],
      );
    } finally {
      await taken.stop();
      rmSync(folder, { recursive: true, force: true });
    }
  });
}

test('an operator port in use: the same, the main port closed again', async () => {
  const taken = await startTestServer();
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  try {
    const refused = await startServer({
      host: '127.0.0.1',
      port: 0,
      cacheDir: SAMPLE_IMAGES,
      database,
      operatorHost: '127.0.0.1',
      operatorPort: taken.port,
    }).then(
      (): NodeJS.ErrnoException => assert.unreachable('the operator port is in use') as never,
      (error: unknown) => error as NodeJS.ErrnoException,
    );
    assert.is(refused.code, 'EADDRINUSE');
    assert.equal(readHistoryFile(database), []);
    assert.not.ok(existsSync(`${database}.lock`), 'the lock is released');
  } finally {
    await taken.stop();
    rmSync(folder, { recursive: true, force: true });
  }
});

test('imgcache-server --port <in use> exits 1 saying EADDRINUSE, leaving no record and no lock', async () => {
  const taken = await startTestServer();
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  try {
    const result = await runCommand(SERVER_BIN, [
      '--port',
      String(taken.port),
      '--host',
      '127.0.0.1',
      '--history',
      database,
      '--cache-dir',
      SAMPLE_IMAGES,
    ]);
    assert.is(result.status, 1);
    assert.match(result.stderr, /EADDRINUSE/);
    assert.equal(readdirSync(folder), ['history.sqlite'], 'no -wal, -shm or .lock left behind');
    assert.equal(readHistoryFile(database), []);
  } finally {
    await taken.stop();
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
