/**
 * History survives restarts: names stay unique across runs, earlier sessions and their requests stay in the usage
 * history, and a session left open by a crash is closed on record at the next start.
 */
import { rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { EventLog } from '../db/event-log.ts';
import { openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';

interface UsageClient {
  name: string;
  closeReason: string | null;
  requests: Array<{ image: string; outcome: string }>;
}

test('names, sessions and image requests survive a restart on the same history file', async () => {
  const folder = makeTemporaryFolder();
  try {
    const first = await startTestServer({ folder, codes: [108] });
    const early = await ImgcacheClient.connect({ port: first.port });
    await downloadImage(early, 'sunset.png', `${folder}/downloads`);
    await early.exit();
    await first.stop();

    const second = await startTestServer({ folder, codes: [950] });
    const late = await ImgcacheClient.connect({ port: second.port });
    assert.is.not(late.welcome.session.name, early.welcome.session.name, 'a name is never reused');
    const usage = (await late.usage()) as { clients: UsageClient[] };
    const earlier = usage.clients.find((client) => client.name === early.welcome.session.name);
    assert.ok(earlier, 'the first run is in the history');
    assert.is(earlier?.closeReason, 'client-exit');
    assert.equal(
      earlier?.requests.map((request) => request.image),
      ['sunset.png'],
    );
    await late.exit();
    await second.stop();
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a session left open by a crash is closed on record, with reason server-restart, at the next start', async () => {
  const folder = makeTemporaryFolder();
  try {
    // What a killed server leaves behind: an admitted session with no close.
    const database = openDatabase(`${folder}/history.sqlite`);
    const log = new EventLog(database);
    log.recordNow([
      {
        session: 7,
        type: 'session-admitted',
        data: { name: 'client-7', code: 108, tier: 'bronze', quota: 3, protocolVersion: 1, remote: '127.0.0.1:1' },
      },
    ]);
    log.close();
    database.close();

    const restarted = await startTestServer({ folder });
    const client = await ImgcacheClient.connect({ port: restarted.port });
    assert.is(client.welcome.session.name, 'client-8', 'numbering continues after the crashed session');
    await client.exit();
    await restarted.stop();

    const history = openDatabase(`${folder}/history.sqlite`, { readonly: true });
    const closes = readEvents(history, { session: 7 }).filter((event) => event.type === 'session-closed');
    history.close();
    assert.equal(
      closes.map((event) => event.data),
      [{ reason: 'server-restart' }],
    );
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
