/**
 * [P-22] [P-46] The usage document is built off the event loop, and can be asked for in part: while a long usage
 * streams to one client, another client's list is answered before that usage's END; `client`, `since` and `until`
 * select exactly the sessions they name.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildHistory } from '../bench/history-export.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { EventLog } from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { openDatabase } from '../db/open-database.ts';
import { MessageType } from '../src/protocol/index.ts';
import type { UsageDocument } from '../src/protocol/usage-document.ts';
import { usageFromFile } from '../src/server/server.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const PLATINUM = 950;
const BRONZE = 108;

/** Sends a usage request and reads its whole answer; checks the END against the content [P-24]. */
async function usage(raw: RawConnection, id: number, fields: object = {}): Promise<UsageDocument> {
  raw.sendJson(MessageType.REQUEST, { id, command: 'usage', ...fields });
  const reply = await raw.nextJson(MessageType.REPLY);
  assert.is(reply.id, id);
  const { content, end } = await raw.readStream(id);
  assert.is(end.bytes, content.length);
  assert.is(end.sha256, createHash('sha256').update(content).digest('hex'));
  return JSON.parse(content.toString('utf8')) as UsageDocument;
}

test('[P-46] while a long usage is built and streamed, another client’s list is answered before its first DATA', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const built = buildHistory(database, 200_000); // 10,000 sessions, about 20 MB of JSON
  const server = await startTestServer({ folder, database, codes: [PLATINUM, BRONZE] });
  const reader = await RawConnection.admitted(server.port);
  const other = await RawConnection.admitted(server.port);
  try {
    const order: string[] = [];
    reader.sendJson(MessageType.REQUEST, { id: 1, command: 'usage' });
    await reader.nextJson(MessageType.REPLY); // the usage is under way
    other.sendJson(MessageType.REQUEST, { id: 2, command: 'list' });
    const listed = other.nextJson(MessageType.REPLY).then((reply) => {
      order.push('list answered');
      return reply;
    });
    const streamed = reader.next().then(async (first) => {
      order.push('usage first DATA');
      assert.is(first?.type, MessageType.DATA);
      const rest = await reader.readStream(1);
      order.push('usage END');
      return { content: Buffer.concat([first?.body ?? Buffer.alloc(0), rest.content]), end: rest.end };
    });
    const [list, stream] = await within(Promise.all([listed, streamed]), 'both answers', 60_000);
    // Built on the event loop, the document's first chunk went out before anything else was served: the list waited.
    assert.equal(order, ['list answered', 'usage first DATA', 'usage END']);
    assert.is((list.images as unknown[]).length, 4);
    assert.is(stream.end.bytes, stream.content.length);
    const document = JSON.parse(stream.content.toString('utf8')) as UsageDocument;
    assert.ok(document.clients.length >= built.sessions * 0.98, `${document.clients.length} clients`);
  } finally {
    reader.destroy();
    other.destroy();
    await server.stop();
  }
});

/** A history of six sessions an hour apart, every other one closed, and a rejection between them. */
function smallHistory(database: string): number {
  const db = openDatabase(database);
  const log = new EventLog(db);
  const start = Date.UTC(2026, 10, 1);
  const events: NewEvent[] = [];
  for (let session = 1; session <= 6; session++) {
    const at = start + session * 3_600_000;
    events.push({
      session,
      at,
      type: 'session-admitted',
      data: {
        name: `client-${session}`,
        code: 950,
        tier: 'platinum',
        quota: 20,
        protocolVersion: 1,
        remote: '127.0.0.1:1',
      },
    });
    events.push({
      session,
      at: at + 10,
      type: 'image-served',
      data: { requestId: 1, image: 'sunset.png', bytes: 10, sha256: 'ab'.repeat(32), quotaUsed: 1, quotaLimit: 20 },
    });
    if (session % 2 === 0)
      events.push({ session, at: at + 20, type: 'session-closed', data: { reason: 'client-exit' } });
  }
  events.push({
    session: 7,
    at: start + 3.5 * 3_600_000,
    type: 'connection-rejected',
    data: { reason: 'server-full', occupancy: { open: 3, capacity: 3 }, remote: '127.0.0.1:2' },
  });
  log.recordNow(events);
  log.close();
  db.close();
  return start;
}

test('[P-46] client, since and until select exactly the sessions they name; a bad value is bad-request', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const start = smallHistory(database);
  const hour = (n: number) => new Date(start + n * 3_600_000).toISOString();
  const server = await startTestServer({ folder, database, codes: [PLATINUM] });
  const raw = await RawConnection.admitted(server.port);
  try {
    const names = (document: UsageDocument) => document.clients.map((client) => client.name);
    const everything = await usage(raw, 1);
    assert.equal(names(everything).slice(0, 6), [
      'client-1',
      'client-2',
      'client-3',
      'client-4',
      'client-5',
      'client-6',
    ]);

    const one = await usage(raw, 2, { client: 'client-3' });
    assert.equal(names(one), ['client-3']);
    assert.equal(one.clients[0], everything.clients[2]);
    assert.equal(one.rejected, []);
    assert.equal(names(await usage(raw, 3, { client: 'client-4' })), ['client-4']);
    assert.equal(names(await usage(raw, 4, { client: 'nobody' })), []);

    const range = await usage(raw, 5, { since: hour(2), until: hour(5) });
    assert.equal(names(range), ['client-2', 'client-3', 'client-4']);
    assert.is(range.rejected.length, 1);
    assert.equal(names(await usage(raw, 6, { since: hour(5) })).slice(0, 2), ['client-5', 'client-6']);
    assert.equal(names(await usage(raw, 7, { until: '2026-11-01T02:00:00Z' })), ['client-1']);
    assert.equal(names(await usage(raw, 8, { client: 'client-3', since: hour(4) })), []);

    // The client library (and so the CLI's --client, --since, --until) sends the same filters.
    const client = await ImgcacheClient.connect({ port: server.port });
    try {
      const viaClient = JSON.parse(await client.usageText({ client: 'client-2' })) as UsageDocument;
      assert.equal(names(viaClient), ['client-2']);
    } finally {
      client.close();
    }

    for (const [id, fields] of [
      [9, { since: 'yesterday' }],
      [10, { until: 17 }],
      [11, { client: 3 }],
      // Days past the end of their month are no dates, though Date.parse rolls them into the next month.
      [12, { since: '2026-02-30' }],
      [13, { until: '2025-02-29T10:00:00Z' }],
      [14, { since: '2026-04-31T00:00:00+01:00' }],
    ] as const) {
      raw.sendJson(MessageType.REQUEST, { id, command: 'usage', ...fields });
      const error = await raw.nextJson(MessageType.ERROR);
      assert.is(error.code, 'bad-request', JSON.stringify(fields));
      assert.is(error.fatal, false);
    }
  } finally {
    raw.destroy();
    await server.stop();
  }
  // The operator's export reads the same filters.
  const operator = JSON.parse(Array.from(usageFromFile(database, { session: 5 })).join('')) as UsageDocument;
  assert.equal(
    operator.clients.map((client) => client.name),
    ['client-5'],
  );
});

test.run();
