/**
 * The servers under test, each started as its own process so that its CPU time and memory are its own: imgcache
 * (`node src/bin/imgcache-server.js`, configured only through its real options), the bare baseline and the common way.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/config.ts';

export const IMGCACHE_SERVER_BIN = path.join(PACKAGE_ROOT, 'src/bin/imgcache-server.js');
/** the `imgcache` command, as installed: it runs dist/ (the sources through tsx without it) */
export const CLIENT_BIN = path.join(PACKAGE_ROOT, 'client/bin/imgcache.js');
const BARE_SERVER = path.join(PACKAGE_ROOT, 'bench/bare-server.ts');
const COMMON_WAY_SERVER = path.join(PACKAGE_ROOT, 'bench/common-way-server.ts');
const START_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 15_000;
const LISTEN_POLL_MS = 20;

export interface ServerProcess {
  readonly pid: number;
  readonly port: number;
  /** what the process wrote on stderr so far (for failure reports) */
  stderr(): string;
  /** SIGTERM, and SIGKILL if it has not exited within 15 s; resolves once it has exited */
  stop(): Promise<void>;
}

export interface ImgcacheServerOptions {
  cacheDir: string;
  database: string;
  capacity: number;
  /** a tier table file ([P-20]); the bench gives every code a quota no run can use up */
  tiersFile: string;
  /** `warn` for the measured rows (no line per event, like nginx without its access log) */
  logLevel: string;
  /** where the server's stdout (its log) goes; nowhere when absent */
  logFile?: string;
  /** options for node itself, e.g. --cpu-prof */
  nodeOptions?: readonly string[];
  /** more options for the server, e.g. the free-request budget */
  serverOptions?: readonly string[];
}

export async function startImgcacheServer(options: ImgcacheServerOptions): Promise<ServerProcess> {
  const port = await freePort();
  const args = [
    ...(options.nodeOptions ?? []),
    IMGCACHE_SERVER_BIN,
    ...['--host', '127.0.0.1', '--port', String(port)],
    ...['--cache-dir', options.cacheDir, '--database', options.database],
    ...['--capacity', String(options.capacity), '--tiers', options.tiersFile],
    // Every load client connects from 127.0.0.1, many at once: let them all be in their handshake together [P-43].
    ...['--max-handshakes', String(Math.max(64, options.capacity))],
    ...['--max-handshakes-per-address', String(Math.max(64, options.capacity))],
    ...['--idle-timeout-ms', String(3_600_000), '--handshake-timeout-ms', String(60_000)],
    ...['--log-level', options.logLevel, '--log-format', 'json'],
    ...(options.serverOptions ?? []),
  ];
  const logFd = options.logFile === undefined ? null : openSync(options.logFile, 'w');
  const child = spawn(process.execPath, args, { cwd: PACKAGE_ROOT, stdio: ['ignore', logFd ?? 'ignore', 'pipe'] });
  if (logFd !== null) closeSync(logFd);
  const watched = watch(child);
  // At `warn` the server prints nothing when it listens: wait until the kernel lists the port as listening
  // (no probe connection, so no session is opened and recorded by the waiting).
  await waitUntil(() => isListening(port), child, watched.stderr, START_DEADLINE_MS);
  return { ...watched, port };
}

/**
 * The bare baseline; with `historyFile`, the baseline that commits each answer's event first, and with
 * `sessionMachine` as well, the one that also takes each answer's steps of the session machine (bench/bare-server.ts).
 */
export function startBareServer(
  cacheDir: string,
  historyFile?: string,
  sessionMachine = false,
): Promise<ServerProcess> {
  const history = historyFile === undefined ? [] : ['--history', historyFile];
  const machine = sessionMachine ? ['--session-machine'] : [];
  return startBenchScript(BARE_SERVER, ['--cache-dir', cacheDir, ...history, ...machine]);
}

/** The common way (bench/common-way-server.ts): Fastify recording each event with a plain INSERT, over HTTP. */
export function startCommonWayServer(cacheDir: string, database: string, synchronous: string): Promise<ServerProcess> {
  return startBenchScript(COMMON_WAY_SERVER, [
    ...['--cache-dir', cacheDir, '--database', database, '--synchronous', synchronous],
  ]);
}

/** A server script of the bench, run through tsx on port 0; resolves with the port it prints (`listening <port>`). */
async function startBenchScript(script: string, args: readonly string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0', ...args], {
    cwd: PACKAGE_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const watched = watch(child);
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening (\d+)/.exec(stdout);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) =>
      reject(new Error(`${path.basename(script)} exited (${code}) before listening: ${watched.stderr()}`)),
    );
  });
  return { ...watched, port };
}

function watch(child: ChildProcess): Omit<ServerProcess, 'port'> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit');
  return {
    pid: child.pid ?? -1,
    stderr: () => stderr,
    stop: () => stopProcess(child, exited),
  };
}

export async function stopProcess(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
  await exited;
  clearTimeout(timer);
}

/** A port that was free a moment ago (the kernel picks it; a race with other programs is possible but rare). */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
}

/** Whether a TCP socket listens on 127.0.0.1:`port`, from the kernel's table (no connection is made). */
export function isListening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const listen = '0A';
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[3] === listen) return true;
  }
  return false;
}

/** Waits for `condition`, checking every 20 ms, until the deadline or the process's exit (both fail). */
export async function waitUntil(
  condition: () => boolean,
  child: ChildProcess,
  stderr: () => string,
  deadlineMs: number,
): Promise<void> {
  const giveUpAt = Date.now() + deadlineMs;
  while (!condition()) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the server exited (${child.exitCode ?? child.signalCode}) before listening: ${stderr()}`);
    }
    if (Date.now() > giveUpAt) throw new Error(`the server did not listen within ${deadlineMs} ms: ${stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, LISTEN_POLL_MS));
  }
}
