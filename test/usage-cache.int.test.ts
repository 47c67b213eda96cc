/**
 * [P-46] The usage cache gives, byte for byte, the document the plain export gives, with or without filters, as the
 * history grows (sessions closing, new ones, interleaved, some open) and when the history is replaced.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventLog } from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { openDatabase } from '../db/open-database.ts';
import { UsageCache, usageCacheFile } from '../db/usage-cache.ts';
import { type UsageFilter, usageJsonChunksFromDatabase } from '../db/usage-export.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

const START = Date.UTC(2026, 10, 1);
const GENERATED = Date.UTC(2026, 11, 1);

function admitted(session: number, at: number): NewEvent {
  return {
    session,
    at,
    type: 'session-admitted',
    data: { name: `client-${session}`, code: 950, tier: 'platinum', quota: 20, protocolVersion: 1, remote: 'r' },
  };
}

function served(session: number, at: number, requestId: number): NewEvent {
  const data = { requestId, image: `i-${requestId}.png`, bytes: requestId, sha256: 'ab'.repeat(32) };
  return { session, at, type: 'image-served', data: { ...data, quotaUsed: requestId, quotaLimit: 20 } };
}

const closed = (session: number, at: number): NewEvent => ({
  session,
  at,
  type: 'session-closed',
  data: { reason: 'client-exit' },
});

/** Sessions from..to, three at a time interleaved; those in `leaveOpen` get no close. */
function sessions(from: number, to: number, leaveOpen: ReadonlySet<number> = new Set()): NewEvent[] {
  const events: NewEvent[] = [];
  for (let first = from; first <= to; first += 3) {
    const group = [first, first + 1, first + 2].filter((session) => session <= to);
    const at = START + first * 60_000;
    for (const session of group) events.push(admitted(session, at + session));
    for (let request = 1; request <= 3; request++) {
      for (const session of group) events.push(served(session, at + 100 * request + session, request));
    }
    for (const session of group) if (!leaveOpen.has(session)) events.push(closed(session, at + 1000 + session));
    if (first % 2 === 0) {
      events.push({
        session: to + 1000 + first,
        at: at + 500,
        type: 'connection-rejected',
        data: { reason: 'server-full', occupancy: { open: 3, capacity: 3 }, remote: 'r' },
      });
    }
  }
  return events;
}

function append(file: string, events: NewEvent[]): void {
  const db = openDatabase(file);
  const log = new EventLog(db);
  log.recordNow(events);
  log.close();
  db.close();
}

const FILTERS: Array<UsageFilter | undefined> = [
  undefined,
  { session: 4 },
  { session: 9 },
  { session: 999 },
  { since: START + 6 * 60_000 },
  { until: START + 10 * 60_000 },
  { since: START + 3 * 60_000, until: START + 12 * 60_000 + 5 },
];

function compare(file: string, what: string): void {
  const history = openDatabase(file, { readonly: true });
  const cache = new UsageCache(usageCacheFile(file));
  try {
    for (const filter of FILTERS) {
      const options = { generatedAt: GENERATED, ...(filter ? { filter } : {}) };
      const plain = Array.from(usageJsonChunksFromDatabase(history, options)).join('');
      const cached = Array.from(cache.export(history, options)).join('');
      assert.is(cached, plain, `${what}, filter ${JSON.stringify(filter)}`);
    }
  } finally {
    cache.close();
    history.close();
  }
}

test('[P-46] the cached document equals the plain export, with every filter, as the history grows', () => {
  const folder = makeTemporaryFolder();
  const file = path.join(folder, 'history.sqlite');
  try {
    append(file, sessions(1, 12, new Set([5, 11])));
    compare(file, 'first export (the cache is built)');
    compare(file, 'second export (all from the cache)');
    append(file, [closed(5, START + 50 * 60_000), served(11, START + 51 * 60_000, 9)]);
    append(file, sessions(13, 20, new Set([20])));
    compare(file, 'after more sessions, one of them closing an old open one');
    append(file, [closed(11, START + 60 * 60_000), closed(20, START + 61 * 60_000)]);
    compare(file, 'every session closed');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('[P-46] a cache of another history is rebuilt, not used', () => {
  const folder = makeTemporaryFolder();
  const file = path.join(folder, 'history.sqlite');
  try {
    append(file, sessions(1, 9));
    compare(file, 'the first history');
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    append(file, sessions(30, 35));
    compare(file, 'a new history at the same path');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
