/**
 * A throwaway PostgreSQL 15 for tests: a new cluster in a temp folder, trust authentication, listening on a free
 * loopback port (and a socket in the same folder). PostgreSQL refuses to run as root, so as root (CI) every command
 * runs as the `postgres` user through runuser; otherwise as ourselves.
 *
 * One instance per test file (initdb takes about a second); `createDatabase` gives each test a fresh database.
 * `halt` / `start` stop it and start it again on the same port and data, for outage tests. However the test process
 * ends (normally, an exception, Ctrl-C, a kill), every instance still running is stopped and its folder removed
 * (./cleanup-on-exit.ts).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../bench/server-processes.ts';
import { cleanUpOnExit } from './cleanup-on-exit.ts';

const run = promisify(execFile);

/** Where initdb and pg_ctl are: IMGCACHE_TEST_POSTGRES_BIN, or the newest version installed the Debian way. */
export const POSTGRES_BIN = process.env.IMGCACHE_TEST_POSTGRES_BIN ?? newestDebianPostgresBin('/usr/lib/postgresql');
const SUPERUSER = 'imgcache';
const AS_ROOT = process.getuid?.() === 0;

export interface PostgresOptions {
  /** fsync and synchronous commit on (for measurements); off by default: tests need no crash safety of the disk */
  durable?: boolean;
}

export interface PostgresInstance {
  /** postgres://imgcache@127.0.0.1:<port>/postgres (trust authentication: no password) */
  readonly url: string;
  readonly port: number;
  /** the temp folder holding the data, the log and the socket */
  readonly folder: string;
  /** a new empty database on this instance; resolves with its URL */
  createDatabase(name: string): Promise<string>;
  /** stops the server (fast shutdown: sessions are cut) and keeps the data */
  halt(): Promise<void>;
  /** stops the server at once, as a crash would (immediate shutdown), and keeps the data */
  kill(): Promise<void>;
  /**
   * stops every process of the server with SIGSTOP: it keeps its sockets open and answers nothing, as a server cut
   * off by the network does (no reset, no refusal); `thaw` lets them go on
   */
  freeze(): void;
  thaw(): void;
  /** starts the server again on the same port and data; resolves once it accepts connections */
  start(): Promise<void>;
  /** halt then start */
  restart(): Promise<void>;
  /** whether the server is running now */
  running(): boolean;
  /** what the server logged so far */
  log(): string;
  /** stops the server and removes everything; idempotent */
  stop(): Promise<void>;
}

function newestDebianPostgresBin(root: string): string {
  const versions = existsSync(root)
    ? readdirSync(root).filter((version) => existsSync(path.join(root, version, 'bin', 'initdb')))
    : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return path.join(root, versions[0] ?? '15', 'bin');
}

interface LiveInstance {
  folder: string;
  data: string;
  /** takes its cleanup on the process's exit off the list */
  forget(): void;
}

const live = new Set<LiveInstance>();

/** Starts a new PostgreSQL 15 cluster; resolves once it accepts connections. */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresInstance> {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'imgcache-pg-'));
  const data = path.join(folder, 'data');
  const logFile = path.join(folder, 'log');
  const entry: LiveInstance = { folder, data, forget: () => {} };
  entry.forget = cleanUpOnExit(() => stopNow(entry));
  live.add(entry);
  if (AS_ROOT) {
    const { uid, gid } = postgresUser();
    chownSync(folder, uid, gid);
  }
  try {
    await pgCommand('initdb', ['-D', data, '-A', 'trust', '-U', SUPERUSER, '--no-sync', '-E', 'UTF8']);
  } catch (error) {
    rmSync(folder, { recursive: true, force: true, maxRetries: 5 });
    live.delete(entry);
    entry.forget();
    throw error;
  }
  const settings = [
    '-c listen_addresses=127.0.0.1',
    `-k ${folder}`,
    '-c max_connections=60',
    '-c shared_buffers=16MB',
    ...(options.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
  ];
  let port = 0;
  let isRunning = false;
  const startOn = async (chosen: number) => {
    await pgCommand('pg_ctl', ['-D', data, '-o', `-p ${chosen} ${settings.join(' ')}`, '-l', logFile, '-w', 'start']);
    isRunning = true;
  };
  // A free port may be taken by someone else between our look and the server's bind: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await startOn(port);
      break;
    } catch (error) {
      if (attempt >= 5) {
        await destroy(entry);
        throw error;
      }
    }
  }
  const url = `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`;
  const shutdown = async (mode: 'fast' | 'immediate') => {
    if (!isRunning) return;
    await pgCommand('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
    isRunning = false;
  };
  return {
    url,
    port,
    folder,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return `postgres://${SUPERUSER}@127.0.0.1:${port}/${encodeURIComponent(name)}`;
    },
    halt: () => shutdown('fast'),
    kill: () => shutdown('immediate'),
    start: () => startOn(port),
    async restart() {
      await shutdown('fast');
      await startOn(port);
    },
    running: () => isRunning,
    freeze: () => signalAll(data, 'SIGSTOP'),
    thaw: () => signalAll(data, 'SIGCONT'),
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop() {
      isRunning = false;
      await destroy(entry);
    },
  };
}

async function destroy(entry: LiveInstance): Promise<void> {
  if (!live.delete(entry)) return;
  if (existsSync(path.join(entry.data, 'postmaster.pid'))) {
    thawQuietly(entry.data);
    await pgCommand('pg_ctl', ['-D', entry.data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
  }
  rmSync(entry.folder, { recursive: true, force: true, maxRetries: 5 });
  entry.forget();
}

/** Sends `signal` to the server's postmaster and each of its processes (its children), by their pids. */
function signalAll(data: string, signal: NodeJS.Signals): void {
  const postmaster = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map(Number);
  } catch {
    // no children
  }
  for (const pid of [postmaster, ...children]) process.kill(pid, signal);
}

/** A frozen server cannot stop: it is let go on first (nothing happens to one that is not frozen). */
function thawQuietly(data: string): void {
  try {
    signalAll(data, 'SIGCONT');
  } catch {
    // gone already
  }
}

/** Runs one of PostgreSQL's programs, as the postgres user when we are root. */
async function pgCommand(program: string, args: string[]): Promise<void> {
  const [file, argv] = commandLine(program, args);
  try {
    await run(file, argv, { timeout: 60_000 });
  } catch (error) {
    const { stderr = '', stdout = '' } = error as { stderr?: string; stdout?: string };
    throw new Error(`${program} ${args.join(' ')} failed: ${stderr || stdout || String(error)}`);
  }
}

function commandLine(program: string, args: string[]): [string, string[]] {
  const binary = path.join(POSTGRES_BIN, program);
  return AS_ROOT ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
}

function postgresUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/**
 * Stops an instance at once without the event loop, for a test process on its way out: an immediate shutdown (the
 * postmaster and its processes quit without a checkpoint), or SIGKILL to each of them if pg_ctl takes too long; then
 * the folder goes.
 */
function stopNow(entry: LiveInstance): void {
  if (existsSync(path.join(entry.data, 'postmaster.pid'))) {
    thawQuietly(entry.data);
    const [file, argv] = commandLine('pg_ctl', ['-D', entry.data, '-m', 'immediate', '-w', 'stop']);
    try {
      execFileSync(file, argv, { stdio: 'ignore', timeout: 10_000 });
    } catch (error) {
      // Only a pg_ctl that took too long leaves a server running; one that failed at once found it gone already, and
      // its stale pid file may name someone else's process by now.
      if ((error as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
        try {
          signalAll(entry.data, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  rmSync(entry.folder, { recursive: true, force: true, maxRetries: 5 });
}
