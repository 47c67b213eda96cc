/**
 * The seed report assumed its shared connection counter had no races. Ours has none by construction (one admission
 * actor owns the count and handles one event at a time); this shows it under a burst of simultaneous connections.
 */
import { rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import { RejectedError } from '../src/protocol/index.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';

test('50 clients connecting at once against a capacity of 3 get exactly 3 welcomes and 47 rejects', async () => {
  const folder = makeTemporaryFolder();
  const running = await startTestServer({ capacity: 3, folder });
  try {
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, () =>
        ImgcacheClient.connect({ port: running.port }).then(
          (client) => ({ client, rejected: null }),
          (error: unknown) => ({ client: null, rejected: error }),
        ),
      ),
    );
    const welcomed = outcomes.flatMap((outcome) => (outcome.client ? [outcome.client] : []));
    const rejected = outcomes.filter((outcome) => outcome.rejected);
    assert.is(welcomed.length, 3);
    assert.is(rejected.length, 47);
    for (const { rejected: error } of rejected) {
      assert.instance(error, RejectedError);
      assert.is((error as RejectedError).reject.reason, 'server-full');
      assert.equal((error as RejectedError).reject.occupancy, { open: 3, capacity: 3 });
    }
    await Promise.all(welcomed.map((client) => client.exit()));
  } finally {
    await running.stop();
  }
  const history = openDatabase(running.database, { readonly: true });
  const types = readEvents(history).map((event) => event.type);
  history.close();
  assert.is(types.filter((type) => type === 'session-admitted').length, 3);
  assert.is(types.filter((type) => type === 'connection-rejected').length, 47, 'every reject is on record');
  assert.is(types.filter((type) => type === 'session-closed').length, 3);
  rmSync(folder, { recursive: true, force: true });
});

test.run();
