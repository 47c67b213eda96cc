/**
 * A start that fails once the history is open (the port in use, the operator port in use) leaves nothing on record
 * for a server that never listened, no WAL files beside the history, and no instance lock: the next start is not
 * refused, and the history does not show a run that never served and never stopped.
 */
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer } from '../src/server/server.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { runCommand, SERVER_BIN } from './helpers/processes.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';

/** Runs `check` with a port another server holds, and a new folder for the history of the start that must fail. */
async function withPortTaken(check: (port: number, folder: string, database: string) => Promise<void>): Promise<void> {
  const taken = await startTestServer();
  const folder = makeTemporaryFolder();
  try {
    await check(taken.port, folder, path.join(folder, 'history.sqlite'));
  } finally {
    await taken.stop();
    rmSync(folder, { recursive: true, force: true });
  }
}

/** The error of a start that must fail. */
function refusedStart(options: Parameters<typeof startServer>[0]): Promise<NodeJS.ErrnoException> {
  return startServer({ host: '127.0.0.1', cacheDir: SAMPLE_IMAGES, ...options }).then(
    (): NodeJS.ErrnoException => assert.unreachable('the start should fail') as never,
    (error: unknown) => error as NodeJS.ErrnoException,
  );
}

/** The history file alone (no -wal, -shm or .lock), and nothing in it. Listed before it is read: a reader makes them. */
function assertNothingLeft(folder: string, database: string): void {
  assert.equal(readdirSync(folder), ['history.sqlite'], 'no -wal, -shm or .lock left behind');
  assert.equal(readHistoryFile(database), [], 'no server-started for a server that never listened');
}

for (const historyThread of [false, true]) {
  test(`a port in use: nothing on record, no WAL, no lock left (history thread: ${historyThread})`, () =>
    withPortTaken(async (port, folder, database) => {
      const refused = await refusedStart({ port, database, historyThread });
      assert.is(refused.code, 'EADDRINUSE');
      assertNothingLeft(folder, database);
      const next = await startServer({ host: '127.0.0.1', port: 0, cacheDir: SAMPLE_IMAGES, database });
      await next.close();
      assert.equal(
        readHistoryFile(database).map((event) => event.type),
        ['server-started', 'server-stopped'],
      );
    }));
}

test('an operator port in use: the same, the main port closed again', () =>
  withPortTaken(async (port, folder, database) => {
    const refused = await refusedStart({ port: 0, database, operatorHost: '127.0.0.1', operatorPort: port });
    assert.is(refused.code, 'EADDRINUSE');
    assertNothingLeft(folder, database);
  }));

test('imgcache-server --port <in use> exits 1 saying EADDRINUSE, leaving no record and no lock', () =>
  withPortTaken(async (port, folder, database) => {
    const args = ['--port', String(port), '--host', '127.0.0.1', '--history', database, '--cache-dir', SAMPLE_IMAGES];
    const result = await runCommand(SERVER_BIN, args);
    assert.is(result.status, 1);
    assert.match(result.stderr, /EADDRINUSE/);
    assertNothingLeft(folder, database);
  }));

test.run();
