import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { HistoryEvent, StoredEvent } from '../db/events.ts';
import { isoTime } from '../db/iso-time.ts';
import { projectUsage, type UsageDocument, type UsageInput, usageJsonChunks } from '../db/usage-projection.ts';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const GENERATED = Date.UTC(2026, 10, 25, 10, 5, 0);

function seconds(n: number): number {
  return T0 + n * 1000;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

let position = 0;

function at(ms: number, session: number | null, event: HistoryEvent): StoredEvent {
  position++;
  return { ...event, position, at: ms, session } as StoredEvent;
}

function admitted(code = 108, tier = 'bronze', quota = 3, name?: string): HistoryEvent {
  return {
    type: 'session-admitted',
    data: { name: name ?? `client-${code}`, code, tier, quota, protocolVersion: 1, remote: '127.0.0.1:5000' },
  };
}

function served(image: string, bytes: number, quotaUsed = 1): HistoryEvent {
  return { type: 'image-served', data: { requestId: 1, image, bytes, sha256: 'ab', quotaUsed, quotaLimit: 3 } };
}

function refused(code: string, image?: string, command = 'get'): HistoryEvent {
  return {
    type: 'request-refused',
    data: { requestId: 2, command, code, reason: code, ...(image === undefined ? {} : { image }) },
  };
}

function exhausted(image: string): HistoryEvent {
  return { type: 'quota-exhausted', data: { requestId: 3, image, quotaLimit: 3 } };
}

function closed(reason: string): HistoryEvent {
  return { type: 'session-closed', data: { reason } };
}

function rejected(reason: string, open = 3, capacity = 3): HistoryEvent {
  return { type: 'connection-rejected', data: { reason, occupancy: { open, capacity }, remote: '127.0.0.1:5001' } };
}

function input(sessions: StoredEvent[], rejections: StoredEvent[] = []): UsageInput {
  return { sessions, rejected: rejections, generatedAt: GENERATED };
}

test('an empty history is a document with no clients and no rejections', () => {
  const text = Array.from(usageJsonChunks(input([]))).join('');
  assert.is(text, `{"generatedAt":"${iso(GENERATED)}","clients":[],"rejected":[]}`);
  assert.equal(projectUsage(input([])), { generatedAt: iso(GENERATED), clients: [], rejected: [] });
});

test('[P-32] the example of the spec: every field of a client and of a rejection', () => {
  const document = projectUsage(
    input(
      [
        at(seconds(0), 42, admitted(108, 'bronze', 3, 'client-42')),
        at(seconds(5), 42, served('sunset.png', 18214)),
        at(seconds(60), 42, closed('client-exit')),
      ],
      [at(seconds(1), 43, rejected('server-full'))],
    ),
  );
  assert.equal(document, {
    generatedAt: '2026-11-25T10:05:00.000Z',
    clients: [
      {
        name: 'client-42',
        code: 108,
        tier: 'bronze',
        connectedAt: '2026-11-25T10:00:00.000Z',
        disconnectedAt: '2026-11-25T10:01:00.000Z',
        closeReason: 'client-exit',
        quota: { limit: 3, used: 1 },
        requests: [{ image: 'sunset.png', at: '2026-11-25T10:00:05.000Z', outcome: 'served', bytes: 18214 }],
      },
    ],
    rejected: [{ at: '2026-11-25T10:00:01.000Z', reason: 'server-full', occupancy: { open: 3, capacity: 3 } }],
  });
});

test('[P-32] an open session has a null disconnectedAt and closeReason', () => {
  const [client] = projectUsage(input([at(seconds(0), 1, admitted())])).clients;
  assert.is(client?.disconnectedAt, null);
  assert.is(client?.closeReason, null);
  assert.equal(client?.requests, []);
  assert.equal(client?.quota, { limit: 3, used: 0 });
});

test('[P-32] outcomes: served, not-found and refused, in order; other refusals are not image requests', () => {
  const [client] = projectUsage(
    input([
      at(seconds(0), 1, admitted(500, 'gold', 10)),
      at(seconds(1), 1, served('a.png', 100, 1)),
      at(seconds(2), 1, refused('image-not-found', 'missing.png')),
      at(seconds(3), 1, refused('usage-forbidden', undefined, 'usage')),
      at(seconds(4), 1, refused('bad-request')),
      at(seconds(5), 1, refused('image-not-found')),
      at(seconds(6), 1, served('b.png', 200, 2)),
      at(seconds(7), 1, exhausted('c.png')),
    ]),
  ).clients;
  assert.equal(client?.requests, [
    { image: 'a.png', at: iso(seconds(1)), outcome: 'served', bytes: 100 },
    { image: 'missing.png', at: iso(seconds(2)), outcome: 'not-found' },
    { image: 'b.png', at: iso(seconds(6)), outcome: 'served', bytes: 200 },
    { image: 'c.png', at: iso(seconds(7)), outcome: 'refused' },
  ]);
  assert.equal(client?.quota, { limit: 10, used: 2 }, 'only served images spend the quota');
});

test('[P-32] [P-35] a conditional get answered not-modified is a request with outcome not-modified; it spends nothing', () => {
  const notModified: HistoryEvent = {
    type: 'image-not-modified',
    data: { requestId: 2, image: 'a.png', sha256: 'ab'.repeat(32) },
  };
  const [client] = projectUsage(
    input([
      at(seconds(0), 1, admitted()),
      at(seconds(1), 1, served('a.png', 100, 1)),
      at(seconds(2), 1, notModified),
      at(seconds(3), 1, notModified),
    ]),
  ).clients;
  assert.equal(client?.requests, [
    { image: 'a.png', at: iso(seconds(1)), outcome: 'served', bytes: 100 },
    { image: 'a.png', at: iso(seconds(2)), outcome: 'not-modified' },
    { image: 'a.png', at: iso(seconds(3)), outcome: 'not-modified' },
  ]);
  assert.equal(client?.quota, { limit: 3, used: 1 });
});

test('clients follow the input order of sessions; a session never admitted is not a client', () => {
  const document = projectUsage(
    input([
      at(seconds(0), 5, admitted(105)),
      at(seconds(9), 5, closed('idle-timeout')),
      at(seconds(1), 6, refused('bad-hello', undefined, 'hello')),
      at(seconds(2), 7, admitted(107)),
      at(seconds(3), 7, served('x.png', 1)),
    ]),
  );
  assert.equal(
    document.clients.map((client) => [client.name, client.closeReason, client.quota.used]),
    [
      ['client-105', 'idle-timeout', 0],
      ['client-107', null, 1],
    ],
  );
});

test('rejections are listed in order with their time, reason and occupancy', () => {
  const document = projectUsage(
    input(
      [],
      [at(seconds(1), 3, rejected('server-full', 3, 3)), at(seconds(2), null, rejected('unsupported-version', 1, 3))],
    ),
  );
  assert.equal(document.rejected, [
    { at: iso(seconds(1)), reason: 'server-full', occupancy: { open: 3, capacity: 3 } },
    { at: iso(seconds(2)), reason: 'unsupported-version', occupancy: { open: 1, capacity: 3 } },
  ]);
});

function* manySessions(count: number, pulled: { events: number }): Generator<StoredEvent> {
  for (let session = 1; session <= count; session++) {
    pulled.events++;
    yield at(seconds(session), session, admitted(session, 'bronze', 3, `client-${session}-${'x'.repeat(40)}`));
    pulled.events++;
    yield at(seconds(session), session, served(`image-${session}.png`, session));
  }
}

test('the chunks stream: the first arrives before the input is read to its end, and all join into valid JSON', () => {
  const pulled = { events: 0 };
  const sessions = 5_000;
  const chunks = usageJsonChunks({ sessions: manySessions(sessions, pulled), rejected: [], generatedAt: GENERATED });
  const first = chunks.next();
  assert.not.ok(first.done);
  assert.ok(pulled.events < sessions * 2, `the first chunk came after ${pulled.events} of ${sessions * 2} events`);
  const rest = Array.from(chunks);
  assert.ok(rest.length > 1, 'a large document comes in several chunks');
  const document = JSON.parse([first.value, ...rest].join('')) as UsageDocument;
  assert.is(document.clients.length, sessions);
  assert.is(document.clients[sessions - 1]?.requests[0]?.bytes, sessions);
});

test('projectUsage is the parsed join of the chunks', () => {
  const events = () => [
    at(seconds(0), 1, admitted()),
    at(seconds(1), 1, exhausted('a.png')),
    at(seconds(2), 1, closed('client-exit')),
  ];
  const joined = Array.from(usageJsonChunks(input(events()))).join('');
  assert.equal(projectUsage(input(events())), JSON.parse(joined));
});

test('isoTime writes what Date#toISOString writes', () => {
  const edges = [0, -1, 1, T0, -62_135_596_800_000, -62_135_596_800_001, 253_402_300_799_999, 253_402_300_800_000, 0.5];
  const random = Array.from({ length: 10_000 }, () => Math.floor((Math.random() - 0.3) * 4e12));
  for (const ms of [...edges, ...random]) assert.is(isoTime(ms), new Date(ms).toISOString(), String(ms));
  assert.throws(() => isoTime(Number.NaN), RangeError);
});

test.run();
