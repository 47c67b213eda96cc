/**
 * SQLite failures, made real: another process holding the write lock, a small file system that fills up, a file
 * system remounted read-only, an immutable file. For each, the operator is told with a clear message and a code (at
 * startup: `cannot start: … [code]` on stderr and a non-zero exit; while running: an error line in the log), and a
 * client whose request cannot be recorded gets the fatal ERROR history-unavailable and not one byte of the image
 * ([P-26]: the server refuses to serve what it cannot record).
 *
 * Mounting a tmpfs and `chattr` need root: without them those tests are skipped, and say why in their names.
 */
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openDatabase } from '../db/open-database.ts';
import { MessageType } from '../src/protocol/index.ts';
import { OUTAGE_BEGAN, OUTAGE_ENDED } from '../src/server/history-outage-log.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { runCommand, SERVER_BIN, type ServerProcess, spawnServer } from './helpers/processes.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import {
  holdWriteLock,
  mountSmallFileSystem,
  probeImmutable,
  type SmallFileSystem,
  setImmutable,
} from './helpers/sqlite-conditions.ts';
import { eventually, makeTemporaryFolder } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** Room for a fresh history and its WAL, and little more: a filler file takes the rest. */
const SMALL_FS_KIB = 256;

const probe = mountSmallFileSystem(SMALL_FS_KIB);
if (!('refused' in probe)) probe.unmount();
const mountRefused = 'refused' in probe ? probe.refused : null;
const immutable = probeImmutable();
const chattrRefused = immutable === true ? null : immutable.refused;

/** A history as a first run leaves it: created, migrated, closed. */
function createHistory(file: string): void {
  openDatabase(file).close();
}

async function startFailing(database: string): Promise<{ status: number | null; stderr: string }> {
  return runCommand(SERVER_BIN, ['--port', '0', '--database', database, '--log-format', 'json']);
}

/** A hang guard: the server answers these in milliseconds (a lock in seconds), so a silence this long is a bug. */
const GUARD_MS = 15_000;

interface Refusal {
  /** what happens once the request is sent, before the answer is read (e.g. the condition ends) */
  meanwhile?: () => Promise<void>;
  /** whether the server can record the session's close, and so close the connection */
  closes: boolean;
}

/**
 * [P-26] The `get` is answered with the fatal ERROR history-unavailable as its first frame, before any REPLY or DATA
 * frame: not one byte of the image is on the wire. Then the server closes the connection, when it can record that.
 */
async function expectRefusedUnrecorded(peer: RawConnection, refusal: Refusal): Promise<void> {
  peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'sunset.png' });
  await refusal.meanwhile?.();
  const error = await within(peer.nextJson(MessageType.ERROR), 'ERROR', GUARD_MS);
  assert.equal([error.code, error.fatal, error.id], ['history-unavailable', true, null]);
  if (refusal.closes) {
    assert.is(await within(peer.next(), 'close', GUARD_MS), null, 'nothing follows the fatal ERROR: the server closes');
  }
  peer.destroy();
}

function historyFailures(server: ServerProcess): Array<Record<string, unknown>> {
  return server.logs.filter((entry) => entry.level === 50 && entry.msg === OUTAGE_BEGAN);
}

/** The operator's log line for a history that failed mid-run, with the condition and SQLite's code. */
async function expectHistoryFailureLogged(server: ServerProcess, condition: string, sqliteCode: RegExp) {
  await eventually(() => historyFailures(server).length > 0, 'the server logs the history failure', GUARD_MS);
  const err = historyFailures(server)[0]?.err as Record<string, unknown>;
  assert.is(err.code, 'history-append-failed');
  assert.is(err.condition, condition);
  assert.match(String(err.sqliteCode), sqliteCode);
  assert.match(String(err.message), /^cannot write to the history /);
}

/** Runs a server process for `run`, and kills it if `run` failed before stopping it. */
async function withServer(database: string, run: (server: ServerProcess) => Promise<void>): Promise<void> {
  const server = await spawnServer(['--database', database, '--codes', '950']);
  try {
    await run(server);
  } finally {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited; // gone before its file system is unmounted, or the unmount fails (busy)
    }
  }
}

/** Stops the server cleanly and returns what its history holds for `session`. */
async function stopAndReadSession(server: ServerProcess, database: string, session: number) {
  server.child.kill('SIGTERM');
  assert.is(await server.exited, 0, 'the server still stops cleanly');
  return readHistoryFile(database, { session }).map((event) => event.type);
}

// ---- locked by another process -----------------------------------------------------------------------------------

test('locked by another process at startup: "cannot start … locked by another process [history-locked]", exit 1', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  try {
    createHistory(database);
    const lock = await holdWriteLock(database);
    const result = await within(startFailing(database), 'exit', GUARD_MS).finally(() => lock.release());
    assert.is(result.status, 1);
    assert.match(result.stderr, /^imgcache-server: cannot start: the history .* is locked by another process/);
    assert.match(result.stderr, /\[history-locked\]/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('[P-26] locked by another process mid-run: history-unavailable, no image byte, the lock in the log', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  try {
    await withServer(database, async (server) => {
      const peer = await RawConnection.admitted(server.port);
      const lock = await holdWriteLock(database);
      try {
        // The append of image-served waits out the busy timeout and fails (logged): the image is refused. The lock
        // is released then, while the server waits to record the session's close, so that the close is on record.
        const releaseOnceRefused = async () => {
          await eventually(() => historyFailures(server).length > 0, 'the failed append is logged', GUARD_MS);
          await lock.release();
        };
        await expectRefusedUnrecorded(peer, { meanwhile: releaseOnceRefused, closes: true });
      } finally {
        await lock.release();
      }
      await expectHistoryFailureLogged(server, 'locked', /^SQLITE_BUSY/);
      const events = await stopAndReadSession(server, database, 1);
      assert.equal(events, ['session-admitted', 'session-closed'], 'what was not recorded was not served');
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

// ---- a full disk ----------------------------------------------------------------------------------------------

const withSmallFs = mountRefused === null ? test : test.skip;
const skipNote = (refused: string | null) => (refused === null ? '' : ` (skipped: ${refused})`);

async function onSmallFileSystem(run: (fs: SmallFileSystem) => Promise<void>): Promise<void> {
  const fs = mountSmallFileSystem(SMALL_FS_KIB);
  if ('refused' in fs) throw new Error(fs.refused);
  try {
    await run(fs);
  } finally {
    fs.remountReadWrite();
    fs.unmount();
  }
}

withSmallFs(
  `disk full at startup: "cannot start … the disk is full [history-disk-full]", exit 1${skipNote(mountRefused)}`,
  () =>
    onSmallFileSystem(async (fs) => {
      const database = path.join(fs.folder, 'history.sqlite');
      createHistory(database);
      fs.fill();
      const result = await startFailing(database);
      assert.is(result.status, 1);
      assert.match(result.stderr, /^imgcache-server: cannot start: the history .* the disk is full/);
      assert.match(result.stderr, /\[history-disk-full\]/);
    }),
);

withSmallFs(
  `[P-26] disk full mid-run: history-unavailable, no image byte, SQLITE_FULL in the log${skipNote(mountRefused)}`,
  () =>
    onSmallFileSystem(async (fs) => {
      const database = path.join(fs.folder, 'history.sqlite');
      await withServer(database, async (server) => {
        const peer = await RawConnection.admitted(server.port);
        fs.fill();
        // [P-26] The close follows: the session's close is a fact, kept while the disk is full and committed later.
        await expectRefusedUnrecorded(peer, { closes: true });
        await expectHistoryFailureLogged(server, 'disk-full', /^SQLITE_FULL/);
        // Once there is room again, the same server records and serves: its retry of the held close finds the room
        // (within a second) and says so.
        fs.free();
        await eventually(() => server.logs.some((entry) => entry.msg === OUTAGE_ENDED), 'history recovered', GUARD_MS);
        const later = await RawConnection.admitted(server.port);
        later.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'sunset.png' });
        assert.is((await later.nextJson(MessageType.REPLY)).status, 'ok');
        later.destroy();
        const events = await stopAndReadSession(server, database, 1);
        assert.equal(events, ['session-admitted', 'session-closed'], 'not served, and the close kept through it');
      });
    }),
);

// ---- read-only: a read-only file system, an immutable file ----------------------------------------------------

withSmallFs(
  `read-only file system at startup: "cannot start … (EROFS …) [history-read-only]", exit 1${skipNote(mountRefused)}`,
  () =>
    onSmallFileSystem(async (fs) => {
      const database = path.join(fs.folder, 'history.sqlite');
      createHistory(database);
      fs.remountReadOnly();
      const result = await startFailing(database);
      assert.is(result.status, 1);
      assert.match(result.stderr, /^imgcache-server: cannot start: the history .* cannot be written \(EROFS/);
      assert.match(result.stderr, /\[history-read-only\]/);
    }),
);

const withChattr = chattrRefused === null ? test : test.skip;

withChattr(
  `immutable file at startup: "cannot start … (EPERM …) [history-read-only]", exit 1${skipNote(chattrRefused)}`,
  async () => {
    const folder = makeTemporaryFolder();
    const database = path.join(folder, 'history.sqlite');
    try {
      createHistory(database);
      setImmutable(database, true);
      const result = await startFailing(database).finally(() => setImmutable(database, false));
      assert.is(result.status, 1);
      assert.match(result.stderr, /^imgcache-server: cannot start: the history .* cannot be written \(EPERM/);
      assert.match(result.stderr, /\[history-read-only\]/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  },
);

withChattr(
  `[P-26] the WAL made immutable mid-run: history-unavailable, no image byte, read-only in the log${skipNote(chattrRefused)}`,
  async () => {
    // On a disk file system (tmpfs does not stop writes to a file already open), the kernel refuses the next write.
    const folder = makeTemporaryFolder();
    const database = path.join(folder, 'history.sqlite');
    const wal = `${database}-wal`;
    try {
      await withServer(database, async (server) => {
        const peer = await RawConnection.admitted(server.port);
        setImmutable(wal, true);
        // As with a full disk, the close of the session is kept as a fact while the WAL is immutable.
        await expectRefusedUnrecorded(peer, { closes: true });
        setImmutable(wal, false);
        await expectHistoryFailureLogged(server, 'read-only', /^SQLITE_IOERR/);
        const events = await stopAndReadSession(server, database, 1);
        assert.equal(events, ['session-admitted', 'session-closed'], 'not served, and the close kept through it');
      });
    } finally {
      if (existsSync(wal)) setImmutable(wal, false);
      rmSync(folder, { recursive: true, force: true });
    }
  },
);

test.run();
