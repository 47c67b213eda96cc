/**
 * "The common way": what a Node developer would write for imgcache's job with the usual tools, as a reference for the
 * benchmark. A Fastify server whose `GET /<image>` records an `image-served` event (imgcache's members: request id,
 * image, bytes, sha256, quota used and limit) with a plain better-sqlite3 `INSERT` into a table of its own file (WAL,
 * the `synchronous` asked for), and only then sends the file with @fastify/static's `reply.sendFile`. Idiomatic and
 * untuned: no logger (as nginx runs without its access log), a prepared statement, the files' sizes and hashes read
 * once at start-up as any catalog would; nothing else.
 *
 *   node --import tsx bench/common-way-server.ts --cache-dir DIR --database FILE [--synchronous normal|full]
 *     [--port 0] [--host 127.0.0.1]
 *
 * Prints `listening <port>` once it listens; stops on SIGTERM or SIGINT.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import fastifyStatic from '@fastify/static';
import Database from 'better-sqlite3';
import Fastify from 'fastify';

const QUOTA_LIMIT = 1_000_000_000;

const { values } = parseArgs({
  options: {
    'cache-dir': { type: 'string' },
    database: { type: 'string' },
    synchronous: { type: 'string', default: 'normal' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
const root = values['cache-dir'];
const databaseFile = values.database;
if (!root || !databaseFile || !['normal', 'full'].includes(values.synchronous)) {
  console.error('common-way-server: --cache-dir and --database are required; --synchronous is normal or full');
  process.exit(2);
}

const images = new Map<string, { bytes: number; sha256: string }>();
for (const name of readdirSync(root)) {
  const file = path.join(root, name);
  if (!statSync(file).isFile()) continue;
  const content = readFileSync(file);
  images.set(name, { bytes: content.length, sha256: createHash('sha256').update(content).digest('hex') });
}

const db = new Database(databaseFile);
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${values.synchronous}`);
db.exec(`CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  session INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL
)`);
const insertEvent = db.prepare('INSERT INTO events (at, session, type, data) VALUES (?, ?, ?, ?)');

/** Each keep-alive connection is a session: its number and how many images it was served. */
const sessions = new WeakMap<Socket, { session: number; served: number }>();
let sessionCount = 0;

const app = Fastify({ logger: false });
await app.register(fastifyStatic, { root, serve: false });

app.get<{ Params: { image: string } }>('/:image', (request, reply) => {
  const image = images.get(request.params.image);
  if (!image) return reply.code(404).send({ error: 'image-not-found' });
  let session = sessions.get(request.raw.socket);
  if (!session) {
    session = { session: ++sessionCount, served: 0 };
    sessions.set(request.raw.socket, session);
  }
  session.served++;
  insertEvent.run(
    new Date().toISOString(),
    session.session,
    'image-served',
    JSON.stringify({
      requestId: session.served,
      image: request.params.image,
      bytes: image.bytes,
      sha256: image.sha256,
      quotaUsed: session.served,
      quotaLimit: QUOTA_LIMIT,
    }),
  );
  return reply.sendFile(request.params.image);
});

const address = await app.listen({ port: Number(values.port), host: values.host });
console.log(`listening ${new URL(address).port}`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    db.close();
    process.exit(0);
  });
}
