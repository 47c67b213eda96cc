/**
 * Crash safety: the server process is killed with SIGKILL in the middle of a load of many clients downloading, and
 * restarted on the same files. The history must pass SQLite's integrity check, hold every image any client received
 * in full, keep the names, quota use and requests of the earlier sessions, close the sessions the crash left open
 * (reason server-restart), and the restarted server must serve a client under a name never used before.
 */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import type { UsageClient, UsageDocument } from '../db/usage-projection.ts';
import { runCommand, SERVER_BIN, type ServerProcess, spawnServer } from './helpers/processes.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

const CLIENTS = 12;
/** downloads completed in full (END received, SHA-256 checked) across all clients before the kill */
const KILL_AFTER_DOWNLOADS = 60;
/** each client's loop is bounded; the kill comes long before any client gets there */
const MAX_DOWNLOADS_PER_CLIENT = 200;
const IMAGES = ['checkerboard-dice.png', 'sunset.png', 'mandelbrot.png'];

let folder: string;
let database: string;
let serverArgs: string[];

test.before(() => {
  folder = makeTemporaryFolder('imgcache-crash-');
  database = path.join(folder, 'history.sqlite');
  const tiers = path.join(folder, 'tiers.json');
  // One generous tier: no client of the load runs out of quota before the kill.
  const table = [{ from: 100, to: 999, tier: 'load', quota: 1_000, canReadUsage: false }];
  writeFileSync(tiers, JSON.stringify(table));
  serverArgs = ['--database', database, '--tiers', tiers, '--capacity', '16'];
});

test.after(() => {
  rmSync(folder, { recursive: true, force: true });
});

/** A download received in full by a client: which session, which image. */
interface Received {
  session: string;
  image: string;
}

/** Downloads one image into memory; resolves only once END arrived and the length and SHA-256 matched [P-24]. */
async function download(client: ImgcacheClient, image: string): Promise<void> {
  const hash = createHash('sha256');
  const result = await client.getInto(image, { write: (piece) => void hash.update(piece) });
  assert.is(hash.digest('hex'), result.end.sha256);
}

/** One client of the load: downloads in a loop until its connection drops (or the bound is reached). */
async function downloadUntilCut(port: number, index: number, onReceived: (received: Received) => void) {
  const client = await ImgcacheClient.connect({ port });
  const session = client.welcome.session.name;
  let completed = 0;
  try {
    for (; completed < MAX_DOWNLOADS_PER_CLIENT; completed++) {
      const image = IMAGES[(index + completed) % IMAGES.length] as string;
      await download(client, image);
      onReceived({ session, image });
    }
  } catch {
    // The server was killed under this client: the download in flight is lost, the earlier ones are on record.
  } finally {
    client.close();
  }
  return { session, completed };
}

function integrityCheck(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('integrity_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

async function usageHistory(): Promise<UsageDocument> {
  const result = await runCommand(SERVER_BIN, ['history', '--database', database]);
  assert.is(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as UsageDocument;
}

async function stopCleanly(server: ServerProcess): Promise<void> {
  server.child.kill('SIGTERM');
  assert.is(await server.exited, 0, 'a SIGTERM stops the server cleanly');
}

function servedImages(client: UsageClient | undefined): string[] {
  return (client?.requests ?? []).filter((request) => request.outcome === 'served').map((request) => request.image);
}

test('SIGKILL under load, restart on the same files: integrity ok, nothing received is missing, earlier sessions intact', async () => {
  // An earlier run, stopped cleanly: its sessions are what must survive the crash of the next run.
  const earlier = await spawnServer(serverArgs);
  const first = await ImgcacheClient.connect({ port: earlier.port });
  await download(first, 'sunset.png');
  await download(first, 'mandelbrot.png');
  await first.exit();
  const second = await ImgcacheClient.connect({ port: earlier.port });
  await second.list();
  await second.exit();
  await stopCleanly(earlier);
  const before = await usageHistory();

  // The crash run: CLIENTS clients download in loops; the server is killed once enough downloads are complete.
  const crashing = await spawnServer(serverArgs);
  const listening = crashing.logs.find((entry) => entry.msg === 'listening');
  assert.is(listening?.historySync, 'normal', 'the crash run uses the default durability, --history-sync normal');
  const received: Received[] = [];
  let killed = false;
  const loads = Array.from({ length: CLIENTS }, (_, index) =>
    downloadUntilCut(crashing.port, index, (download) => {
      received.push(download);
      if (!killed && received.length >= KILL_AFTER_DOWNLOADS) {
        killed = true;
        crashing.child.kill('SIGKILL');
      }
    }),
  );
  const outcomes = await Promise.all(loads);
  assert.is(await crashing.exited, null, 'the server died of the signal');
  assert.ok(killed, 'the kill came during the load');
  assert.ok(
    outcomes.every((outcome) => outcome.completed < MAX_DOWNLOADS_PER_CLIENT),
    'every client was cut off by the kill, none ran to its bound',
  );
  assert.is(integrityCheck(database), 'ok', 'the file the crash left behind passes the integrity check');

  // The restart: crashed sessions are closed on record, and a new client gets a name never used.
  const restarted = await spawnServer(serverArgs);
  const recovery = restarted.logs.find((entry) => typeof entry.msg === 'string' && entry.msg.includes('left open'));
  assert.is(recovery?.sessions, CLIENTS, 'the restart closes every session the crash left open');
  const usedNames = new Set(before.clients.map((client) => client.name));
  for (const outcome of outcomes) usedNames.add(outcome.session);
  const late = await ImgcacheClient.connect({ port: restarted.port });
  assert.not.ok(usedNames.has(late.welcome.session.name), `${late.welcome.session.name} was never used before`);
  await download(late, 'sunset.png');
  await late.exit();
  await stopCleanly(restarted);

  const after = await usageHistory();
  const byName = new Map(after.clients.map((client) => [client.name, client]));

  // The earlier run's sessions: names, codes, tiers, quota use, requests and close reasons, all as they were.
  for (const earlierClient of before.clients) {
    assert.equal(byName.get(earlierClient.name), earlierClient, `${earlierClient.name} is intact`);
  }

  // The crash run's sessions: closed as server-restart; every image received in full is on record, in order.
  for (const outcome of outcomes) {
    const client = byName.get(outcome.session);
    assert.is(client?.closeReason, 'server-restart', `${outcome.session} is closed on record`);
    const served = servedImages(client);
    const got = received.filter((download) => download.session === outcome.session).map((download) => download.image);
    assert.equal(served.slice(0, got.length), got, `${outcome.session}: every image it received is in the history`);
    // At most the one download in flight at the kill was recorded and not received.
    assert.ok(served.length <= got.length + 1, `${outcome.session}: ${served.length} served, ${got.length} received`);
    assert.is(client?.quota.used, served.length, `${outcome.session}: quota use matches what was served`);
  }

  const lateClient = byName.get(late.welcome.session.name);
  assert.is(lateClient?.closeReason, 'client-exit');
  assert.equal(servedImages(lateClient), ['sunset.png']);
  assert.is(integrityCheck(database), 'ok', 'the history passes the integrity check after the restart');
});

test.run();
