/**
 * The history committed on a worker thread (--history-thread on): the same guarantees as on the event loop. Every
 * answer waits for its event's commit, the order of the history is the order of the session, and a stop drains the
 * thread before the server-stopped event.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';

for (const historySync of ['full', 'normal'] as const) {
  test(`a session served with the history on its own thread (synchronous ${historySync}) is fully on record`, async () => {
    const folder = makeTemporaryFolder();
    const running = await startTestServer({ folder, codes: [950], historyThread: true, historySync });
    const client = await ImgcacheClient.connect({ port: running.port });
    const served = () => {
      const history = openDatabase(running.database, { readonly: true });
      const count = readEvents(history).filter((event) => event.type === 'image-served').length;
      history.close();
      return count;
    };
    const images = ['sunset.png', 'mandelbrot.png', 'sunset.png'];
    for (const [index, image] of images.entries()) {
      await downloadImage(client, image, `${folder}/downloads`);
      // The answer came after its commit: another connection already reads the event.
      assert.is(served(), index + 1, `the serving of ${image} is on record once it has arrived`);
    }
    await client.exit();
    await running.stop();
    const history = openDatabase(`${folder}/history.sqlite`, { readonly: true });
    const types = readEvents(history).map((event) => event.type);
    history.close();
    assert.equal(types, [
      'server-started',
      'session-admitted',
      'image-served',
      'image-served',
      'image-served',
      'session-closed',
      'server-stopped',
    ]);
  });
}

test.run();
