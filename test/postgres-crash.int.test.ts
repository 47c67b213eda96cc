/**
 * A node on PostgreSQL killed with SIGKILL and started again under the same node name: what it answered is on
 * record, the sessions it left open are closed on record (server-restart) by its next run, and no name is given
 * twice. Real processes, a real PostgreSQL 15.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { readEvents } from '../db/postgres/history-store.ts';
import { openPool } from '../db/postgres/pool.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { spawnServer } from './helpers/processes.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

let postgres: PostgresInstance;

test.before(async () => {
  postgres = await startPostgres();
});

test.after(async () => {
  await postgres?.stop();
});

test('SIGKILL of a node, restart under its name: its open session closed on record, what it served kept, new names', async () => {
  const url = await postgres.createDatabase('crash');
  const args = ['--history', url, '--node-name', 'node-a', '--codes', '950'];
  const crashing = await spawnServer(args);
  const client = await ImgcacheClient.connect({ port: crashing.port });
  await downloadImage(client, 'sunset.png', makeTemporaryFolder('imgcache-client-'));
  crashing.child.kill('SIGKILL');
  await within(crashing.exited, 'the killed server exits');

  const restarted = await spawnServer(args);
  try {
    const later = await ImgcacheClient.connect({ port: restarted.port });
    assert.is.not(later.welcome.session.name, client.welcome.session.name, 'a name is never given twice');
    await later.exit();
  } finally {
    restarted.child.kill('SIGTERM');
    await within(restarted.exited, 'the restarted server stops');
  }
  const warned = restarted.logs.find((entry) => String(entry.msg).startsWith('closed sessions left open'));
  assert.is(warned?.sessions, 1, 'the restart says it closed the session left open');
  const pool = openPool(url, { max: 1 });
  try {
    const events = await readEvents(pool);
    const session = Number(client.welcome.session.name.replace('client-', ''));
    const ofSession = events.filter((event) => event.session === session).map((event) => event.type);
    assert.equal(ofSession, ['session-admitted', 'image-served', 'session-closed']);
    const close = events.find((event) => event.session === session && event.type === 'session-closed');
    assert.is(close?.type === 'session-closed' && close.data.reason, 'server-restart');
  } finally {
    await pool.end();
  }
});

test.run();
