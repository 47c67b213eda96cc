/**
 * The history read with the `sqlite3` shell, as the README shows operators: the `events` table's JSON, image names
 * and hashes included, though a served image is stored as a number of its version (db/image-versions.ts).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { downloadImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';

/** The README's query, its columns separated by '|' instead of aligned. */
const README_QUERY = `select position, datetime(at/1000,'unixepoch') as at, session, type, json_extract(data,'$.image') as image
     from events order by position limit 6`;

test('the README’s sqlite3 query lists the images a session was served, by name', async () => {
  const folder = makeTemporaryFolder();
  try {
    await readmeQueryOnServedHistory(folder);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

async function readmeQueryOnServedHistory(folder: string): Promise<void> {
  const running = await startTestServer({ folder, codes: [950] });
  try {
    const client = await ImgcacheClient.connect({ port: running.port });
    for (const image of ['sunset.png', 'mandelbrot.png', 'sunset.png']) {
      await downloadImage(client, image, path.join(folder, 'downloads'));
    }
    await client.exit();
  } finally {
    await running.stop();
  }

  const lines = execFileSync('sqlite3', ['-separator', '|', running.database, README_QUERY], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.split('|'));
  assert.equal(
    lines.map(([position, , , type, image]) => [position, type, image]),
    [
      ['1', 'server-started', ''],
      ['2', 'session-admitted', ''],
      ['3', 'image-served', 'sunset.png'],
      ['4', 'image-served', 'mandelbrot.png'],
      ['5', 'image-served', 'sunset.png'],
      ['6', 'session-closed', ''],
    ],
  );

  const served = execFileSync(
    'sqlite3',
    [running.database, "select data from events where type = 'image-served' order by position"],
    { encoding: 'utf8' },
  )
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const sunset = readFileSync(path.join(folder, 'downloads', 'sunset.png'));
  assert.equal(served[0], {
    requestId: served[0]?.requestId,
    image: 'sunset.png',
    bytes: sunset.length,
    sha256: createHash('sha256').update(sunset).digest('hex'),
    quotaUsed: 1,
    quotaLimit: served[0]?.quotaLimit,
  });
  assert.equal(
    served.map((data) => data.quotaUsed),
    [1, 2, 3],
  );
}

test.run();
