/**
 * The bench's "common way" reference (bench/common-way-server.ts), a real process on loopback: each image it serves
 * over HTTP keep-alive is recorded as an `image-served` event with imgcache's members, in its own SQLite file,
 * and a missing image records nothing.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type BenchImage, writeBenchImages } from '../bench/bench-fixtures.ts';
import { type ServerProcess, startCommonWayServer } from '../bench/server-processes.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

let folder = '';
let server: ServerProcess;
let image: BenchImage;
let database = '';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

test.before(async () => {
  folder = makeTemporaryFolder('imgcache-common-way-');
  [image] = writeBenchImages(path.join(folder, 'images'), [3000]) as [BenchImage];
  database = path.join(folder, 'events.sqlite');
  server = await startCommonWayServer(path.join(folder, 'images'), database, 'normal');
});

test.after(async () => {
  agent.destroy();
  await server?.stop();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

/** GET `urlPath` over the one kept-alive connection: status and body. */
function get(urlPath: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: server.port, path: urlPath, agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

function recorded(): Array<{ session: number; type: string; data: Record<string, unknown> }> {
  const reader = new Database(database, { readonly: true });
  try {
    return reader
      .prepare<[], { session: number; type: string; data: string }>(
        'SELECT session, type, data FROM events ORDER BY id',
      )
      .all()
      .map((row) => ({ ...row, data: JSON.parse(row.data) as Record<string, unknown> }));
  } finally {
    reader.close();
  }
}

test('each image served over one keep-alive connection is recorded as an image-served event with imgcache members; a missing one records nothing', async () => {
  const content = readFileSync(path.join(folder, 'images', image.name));
  for (let round = 1; round <= 2; round++) {
    const answer = await get(`/${image.name}`);
    assert.is(answer.status, 200);
    assert.ok(answer.body.equals(content), 'the file, whole');
  }
  assert.is((await get('/no-such.png')).status, 404);
  const sha256 = createHash('sha256').update(content).digest('hex');
  assert.equal(
    recorded(),
    [1, 2].map((served) => ({
      session: 1,
      type: 'image-served',
      data: { requestId: served, image: image.name, bytes: 3000, sha256, quotaUsed: served, quotaLimit: 1_000_000_000 },
    })),
  );
});

test.run();
