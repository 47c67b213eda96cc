/**
 * A history outage on a running server, made real: another process holds the history's write lock (an sqlite3
 * shell, a backup). The history never drops a fact: sessions that exit or close meanwhile are on record, in order,
 * once it is back. An admission that cannot be recorded is a rejection, never a session that closed. The operator's
 * log says the outage once, and says when it is over.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Duplex, Writable } from 'node:stream';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NewEvent } from '../db/events.ts';
import { heldFactsFile } from '../db/held-facts.ts';
import { openDatabase } from '../db/open-database.ts';
import { orphanedSessions } from '../db/recover-sessions.ts';
import { encodeJsonFrame, MessageType } from '../src/protocol/index.ts';
import { sequenceOfCodes } from '../src/server/code-source.ts';
import { OUTAGE_BEGAN, OUTAGE_ENDED, OUTAGE_GOES_ON } from '../src/server/history-outage-log.ts';
import { type ImgcacheServer, startServer, usageFromFile } from '../src/server/server.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { holdWriteLock } from './helpers/sqlite-conditions.ts';
import { eventually, makeTemporaryFolder, recordedEvents, SAMPLE_IMAGES } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** A hang guard: a lock costs the server 250 ms per commit attempt, so a silence this long is a bug. */
const GUARD_MS = 15_000;

interface Running {
  server: ImgcacheServer;
  logs: Array<Record<string, unknown>>;
  recorded: NewEvent[];
  /** resolves once a committed event matches (past or future) */
  recordedWhere(matches: (event: NewEvent) => boolean): Promise<void>;
}

async function start(
  database: string,
  options: { historyThread?: boolean; shutdownGraceMs?: number } = {},
): Promise<Running> {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      callback();
    },
  });
  const { events: recorded, onRecorded, waitForEvent } = recordedEvents();
  const server = await startServer(
    { host: '127.0.0.1', port: 0, cacheDir: SAMPLE_IMAGES, database, capacity: 8, ...options },
    {
      codeSource: sequenceOfCodes([950]),
      logger: pino({ level: 'info', base: undefined }, sink),
      onRecorded,
    },
  );
  const recordedWhere = async (matches: (event: NewEvent) => boolean) => {
    await waitForEvent(matches);
  };
  return { server, logs, recorded, recordedWhere };
}

/** An admitted raw peer and the connection number in its name. */
async function admittedPeer(port: number): Promise<{ peer: RawConnection; number: number }> {
  const peer = await RawConnection.open(port);
  peer.hello();
  const welcome = await within(peer.nextJson(MessageType.WELCOME), 'WELCOME', GUARD_MS);
  const name = String((welcome.session as { name: string }).name);
  return { peer, number: Number(name.replace('client-', '')) };
}

function logLines(logs: ReadonlyArray<Record<string, unknown>>, msg: string): Array<Record<string, unknown>> {
  return logs.filter((entry) => entry.msg === msg);
}

test('a lock held while sessions exit and close: every close on record, in order, once it is back; none left connected', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const running = await start(database);
  const { server } = running;
  try {
    const peers = [];
    for (let index = 0; index < 6; index++) peers.push(await admittedPeer(server.address.port));
    const lock = await holdWriteLock(database);
    const heldSince = performance.now();
    const closedInOrder: number[] = [];
    try {
      // One at a time, each close done on the server's side before the next: half exit, half just go away.
      for (const [index, { peer, number }] of peers.entries()) {
        const open = server.stats().sessions;
        if (index % 2 === 0) {
          peer.sendJson(MessageType.REQUEST, { id: 1, command: 'exit' });
          assert.is((await within(peer.nextJson(MessageType.REPLY), 'exit REPLY', GUARD_MS)).status, 'ok');
        } else {
          peer.destroy();
        }
        await eventually(() => server.stats().sessions === open - 1, `session ${number} closes`, GUARD_MS);
        closedInOrder.push(number);
      }
      assert.equal(
        running.recorded.filter((event) => event.type === 'session-closed'),
        [],
        'nothing could be committed while the lock was held',
      );
    } finally {
      await lock.release();
    }
    const heldMs = performance.now() - heldSince;
    await within(
      running.recordedWhere((event) => event.type === 'session-closed' && event.session === closedInOrder.at(-1)),
      'the closes committed once the lock is gone',
      GUARD_MS,
    );
    const history = readHistoryFile(database);
    assert.equal(
      history.filter((event) => event.type === 'session-closed').map((event) => event.session),
      closedInOrder,
      'every close is on record, in the order the sessions closed',
    );
    const db = openDatabase(database, { readonly: true });
    try {
      assert.equal(orphanedSessions(db), [], 'no session admitted and never closed');
    } finally {
      db.close();
    }
    const usage = JSON.parse(Array.from(usageFromFile(database)).join('')) as {
      clients: Array<{ name: string; disconnectedAt: string | null }>;
    };
    assert.equal(
      usage.clients.filter((client) => client.disconnectedAt === null).map((client) => client.name),
      [],
      'the usage document shows no session still connected',
    );

    // The operator's log: the outage said once, nothing repeated within the repeat interval, and its end.
    const began = logLines(running.logs, OUTAGE_BEGAN);
    const ended = logLines(running.logs, OUTAGE_ENDED);
    assert.is(began.length, 1, 'the outage is said once');
    assert.is(
      logLines(running.logs, OUTAGE_GOES_ON).length,
      0,
      `no repeat within an outage of ${heldMs.toFixed(0)} ms`,
    );
    assert.is(running.logs.filter((entry) => entry.level === 50).length, 1, 'one error line in all');
    assert.is((began[0]?.err as { condition?: string } | undefined)?.condition, 'locked');
    assert.is(ended.length, 1, 'and its end');
    const end = ended[0] as { failures: number; lateFacts: number; outageMs: number };
    assert.ok(end.failures >= 1, `${end.failures} failed commit(s), logged in one line`);
    assert.is(end.lateFacts, closedInOrder.length);
    assert.ok(end.outageMs > 0);
  } finally {
    await server.close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test('an admission during a lock is rejected and recorded as a rejection, not a close; its number is not reused', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  let running = await start(database);
  let number = 0;
  try {
    const lock = await holdWriteLock(database);
    try {
      const peer = await RawConnection.open(running.server.address.port);
      peer.hello();
      const reject = await within(peer.nextJson(MessageType.REJECT), 'REJECT', GUARD_MS);
      assert.is(reject.reason, 'history-unavailable');
      // [P-53] No session is open: the rejected connection's own slot, taken at its HELLO, is not counted.
      assert.equal(reject.occupancy, { open: 0, capacity: 8 });
      await within(peer.closed, 'the server closes after the REJECT', GUARD_MS);
      peer.destroy();
    } finally {
      await lock.release();
    }
    await within(
      running.recordedWhere((event) => event.type === 'connection-rejected'),
      'the rejection committed once the lock is gone',
      GUARD_MS,
    );
    const rejection = running.recorded.find((event) => event.type === 'connection-rejected');
    number = rejection?.session ?? 0;
    assert.ok(rejection?.type === 'connection-rejected' && rejection.data.reason === 'history-unavailable');
    await running.server.close();
    assert.equal(
      readHistoryFile(database)
        .filter((event) => event.session === number)
        .map((event) => event.type),
      ['connection-rejected'],
      'never on record as admitted: no close record',
    );
    running = await start(database);
    const { peer, number: next } = await admittedPeer(running.server.address.port);
    assert.ok(next > number, `the number ${number} is not handed out again (got ${next})`);
    peer.destroy();
  } finally {
    await running.server.close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a client that resets while its admission waits on a lock: one rejection or drop on record, never a close', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  // Commits on their own thread: the event loop sees the client leave while the admission's commit waits.
  const running = await start(database, { historyThread: true });
  const { server } = running;
  try {
    const lock = await holdWriteLock(database);
    try {
      const peer = await RawConnection.open(server.address.port);
      peer.hello();
      peer.socket.resetAndDestroy(); // gone (reset) while the server waits (250 ms) to commit its admission
      await eventually(() => server.stats().connections === 0, 'the connection is gone', GUARD_MS);
    } finally {
      await lock.release();
    }
    await within(
      running.recordedWhere((event) => event.type === 'connection-dropped' || event.type === 'connection-rejected'),
      "the connection's end committed once the lock is gone",
      GUARD_MS,
    );
    await server.close();
    const kinds = readHistoryFile(database)
      .filter((event) => event.session !== null)
      .map((event) => event.type);
    // Dropped if the server saw the reset first, rejected (history-unavailable) if it saw the failed commit first.
    assert.ok(
      ['connection-dropped', 'connection-rejected'].includes(kinds[0] ?? '') && kinds.length === 1,
      `never admitted on record, so never closed on record: ${kinds.join(', ')}`,
    );
  } finally {
    await server.close();
    rmSync(folder, { recursive: true, force: true });
  }
});

/** A connection carried by an in-memory stream: the test decides exactly when its peer resets. */
function memoryConnection(server: ImgcacheServer): { side: Duplex; resetByPeer(): void } {
  const side = new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  server.handle(side, 'memory:1');
  return {
    side,
    resetByPeer: () => side.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })),
  };
}

for (const locked of [true, false]) {
  const outcome = locked ? '(and fails): a connection-dropped only' : '(and succeeds): admitted, then closed';
  test(`a peer reset while its admission is being committed ${outcome}`, async () => {
    const folder = makeTemporaryFolder();
    const database = path.join(folder, 'history.sqlite');
    // Commits on their own thread: the event loop sees the reset while the admission's commit is under way.
    const running = await start(database, { historyThread: true });
    const { server } = running;
    try {
      const lock = locked ? await holdWriteLock(database) : null;
      try {
        const { side, resetByPeer } = memoryConnection(server);
        side.push(encodeJsonFrame(MessageType.HELLO, { versions: [1] }));
        await eventually(() => side.readableLength === 0, 'the HELLO is read', GUARD_MS);
        resetByPeer();
        await eventually(() => server.stats().connections === 0, 'the connection is gone', GUARD_MS);
        if (locked) {
          const failed = () => logLines(running.logs, OUTAGE_BEGAN).length > 0;
          await eventually(failed, 'the admission fails to commit', GUARD_MS);
        }
      } finally {
        await lock?.release();
      }
      const last = locked ? 'connection-dropped' : 'session-closed';
      await within(
        running.recordedWhere((event) => event.type === last),
        `${last} on record`,
        GUARD_MS,
      );
      await server.close();
      const records = readHistoryFile(database)
        .filter((event) => event.session !== null)
        .map((event) => [event.type, (event.data as { reason?: string }).reason]);
      assert.equal(
        records,
        locked
          ? [['connection-dropped', 'connection-reset']]
          : [
              ['session-admitted', undefined],
              ['session-closed', 'connection-reset'],
            ],
      );
    } finally {
      await server.close();
      rmSync(folder, { recursive: true, force: true });
    }
  });
}

test('a clean stop during an outage commits the facts it holds, in order, server-stopped last', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const running = await start(database);
  const { server } = running;
  try {
    const { peer, number } = await admittedPeer(server.address.port);
    const lock = await holdWriteLock(database);
    let stopped: Promise<void>;
    try {
      peer.sendJson(MessageType.REQUEST, { id: 1, command: 'exit' });
      await within(peer.nextJson(MessageType.REPLY), 'exit REPLY', GUARD_MS);
      await eventually(() => server.stats().sessions === 0, 'the session closes', GUARD_MS);
      stopped = server.close();
    } finally {
      await lock.release();
    }
    await within(stopped, 'the stop', GUARD_MS);
    const tail = readHistoryFile(database)
      .slice(-2)
      .map((event) => [event.type, event.session]);
    assert.equal(tail, [
      ['session-closed', number],
      ['server-stopped', null],
    ]);
  } finally {
    await server.close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a clean stop whose grace runs out during an outage keeps its facts beside the history; the next start records them first, in order', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const sideFile = heldFactsFile(database);
  const running = await start(database, { shutdownGraceMs: 300 });
  const closedInOrder: number[] = [];
  try {
    const peers = [];
    for (let index = 0; index < 3; index++) peers.push(await admittedPeer(running.server.address.port));
    const lock = await holdWriteLock(database);
    try {
      for (const { peer, number } of peers) {
        const open = running.server.stats().sessions;
        peer.destroy();
        await eventually(() => running.server.stats().sessions === open - 1, `session ${number} closes`, GUARD_MS);
        closedInOrder.push(number);
      }
      await within(running.server.close(), 'the stop, its grace run out', GUARD_MS);
    } finally {
      await lock.release();
    }
  } finally {
    await running.server.close();
  }
  const kept = readFileSync(sideFile, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as NewEvent);
  assert.equal(
    kept.map((event) => [event.type, event.session]),
    [...closedInOrder.map((number) => ['session-closed', number]), ['server-stopped', null]],
    'the facts held, in their order, server-stopped last',
  );
  const said = running.logs.find((entry) => String(entry.msg).includes('kept in a file beside the history'));
  assert.equal([said?.facts, said?.file], [kept.length, sideFile], 'the log says how many, and where');
  assert.not.ok(
    running.logs.some((entry) => String(entry.msg).includes(': lost')),
    'nothing said lost',
  );

  const next = await start(database);
  try {
    assert.not.ok(existsSync(sideFile), 'the file is gone once its facts are on record');
    const history = readHistoryFile(database);
    const from = history.findIndex((event) => event.type === 'session-closed');
    assert.equal(
      history.slice(from).map((event) => [event.type, event.session]),
      [...kept.map((event) => [event.type, event.session]), ['server-started', null]],
      'on record in their order, before anything of the next run',
    );
    assert.equal(
      history.slice(from, from + kept.length).map((event) => new Date(event.at).getTime()),
      kept.map((event) => new Date(event.at ?? 0).getTime()),
      'with the times they happened at',
    );
    assert.ok(
      logLines(next.logs, 'closed sessions left open by an earlier run that did not stop cleanly').length === 0,
      'no session left open: their closes were recorded before the orphans were looked for',
    );
  } finally {
    await next.server.close();
  }
  // A start that committed them and crashed before it removed the file leaves it behind: not committed twice.
  writeFileSync(sideFile, kept.map((event) => `${JSON.stringify(event)}\n`).join(''));
  const after = await start(database);
  try {
    assert.not.ok(existsSync(sideFile), 'the file is removed');
    const closes = readHistoryFile(database).filter((event) => event.type === 'session-closed');
    assert.equal(
      closedInOrder.map((number) => closes.filter((event) => event.session === number).length),
      closedInOrder.map(() => 1),
      'each close on record once',
    );
  } finally {
    await after.server.close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
