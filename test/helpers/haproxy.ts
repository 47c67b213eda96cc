/**
 * HAProxy in TCP mode in front of imgcache nodes, started by a test as a child process in the foreground: one
 * frontend on a loopback port, one server line per node that sends a PROXY protocol v2 header, a health check on
 * each node's operator port (GET /health). `haproxyConfig` writes the same text that docs/SCALING.md shows as its
 * example (a test compares them), so the documented configuration is the tested one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, isListening } from '../../bench/server-processes.ts';
import { cleanUpOnExit } from './cleanup-on-exit.ts';
import { eventually } from './test-server.ts';
import { within } from './within.ts';

export interface HaproxyNode {
  /** the server's name in HAProxy's logs and stats, e.g. node-1 */
  name: string;
  host: string;
  /** the node's imgcache port (the protocol) */
  port: number;
  /** the node's operator port (GET /health) */
  operatorPort: number;
}

export interface HaproxyOptions {
  /** the address clients connect to */
  bind: { host: string; port: number };
  nodes: readonly HaproxyNode[];
  /** a UNIX socket for HAProxy's runtime API (`show servers state`), e.g. /run/haproxy/imgcache.sock */
  statsSocket: string;
}

/**
 * The configuration: TCP mode, one frontend, one backend balanced by least connections (sessions are long and
 * uneven), each node checked every 500 ms on its operator port, taken out after 2 failed checks and back in after 1
 * good one. A client's session may stay idle up to the server's idle timeout (5 minutes, [P-27]), so HAProxy's
 * client and server timeouts are longer than that.
 */
export function haproxyConfig(options: HaproxyOptions): string {
  const servers = options.nodes.map(
    (node) =>
      `  server ${node.name} ${node.host}:${node.port} send-proxy-v2 check port ${node.operatorPort} inter 500ms fall 2 rise 1`,
  );
  return [
    'global',
    '  log stdout format raw local0 info',
    `  stats socket ${options.statsSocket} mode 600 level admin`,
    '  maxconn 4096',
    '',
    'defaults',
    '  mode tcp',
    '  log global',
    '  option tcplog',
    '  timeout connect 2s',
    '  timeout client 6m',
    '  timeout server 6m',
    '  timeout check 1s',
    '',
    'frontend imgcache',
    `  bind ${options.bind.host}:${options.bind.port}`,
    '  default_backend imgcache_nodes',
    '',
    'backend imgcache_nodes',
    '  balance leastconn',
    '  option httpchk GET /health',
    ...servers,
    '',
  ].join('\n');
}

/** The example docs/SCALING.md shows: three nodes on one machine, HAProxy on imgcache's usual port. */
export const SCALING_DOC_EXAMPLE: HaproxyOptions = {
  bind: { host: '127.0.0.1', port: 7878 },
  nodes: [1, 2, 3].map((index) => ({
    name: `node-${index}`,
    host: '127.0.0.1',
    port: 7880 + index,
    operatorPort: 9100 + index,
  })),
  statsSocket: '/run/haproxy/imgcache.sock',
};

export interface RunningHaproxy {
  child: ChildProcess;
  /** the frontend's port, where clients connect */
  port: number;
  /** every line HAProxy printed so far (its log and its warnings) */
  lines: string[];
  /** resolves with the first line (past or future) that matches */
  waitForLine(matches: RegExp, what: string, ms?: number): Promise<string>;
  /** resolves with the first line printed from now on that matches */
  waitForNextLine(matches: RegExp, what: string, ms?: number): Promise<string>;
  /** HAProxy's view of each node: name to state (UP, DOWN, MAINT, ...) */
  serverStates(): Promise<Map<string, string>>;
  /** stops HAProxy (SIGTERM) and waits for it to exit */
  stop(): Promise<void>;
}

/**
 * Writes the configuration into `folder` and starts HAProxy in the foreground (-db) on a free loopback port;
 * resolves once the kernel lists its frontend as listening (HAProxy says nothing then: in verbose mode it names its
 * polling mechanism once it has bound its sockets, a moment before it listens on them).
 */
export async function startHaproxy(folder: string, nodes: readonly HaproxyNode[]): Promise<RunningHaproxy> {
  const port = await freePort();
  const statsSocket = path.join(folder, 'haproxy.sock');
  const configFile = path.join(folder, 'haproxy.cfg');
  writeFileSync(configFile, haproxyConfig({ bind: { host: '127.0.0.1', port }, nodes, statsSocket }));
  const child = spawn('haproxy', ['-db', '-V', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  // a test process that ends before stop() (an exception, Ctrl-C, a kill) leaves no HAProxy behind
  const forget = cleanUpOnExit(() => child.kill('SIGKILL'));
  exited.then(forget, forget);
  const lines: string[] = [];
  const waiters: Array<{ matches: RegExp; resolve: (line: string) => void }> = [];
  const onLine = (line: string): void => {
    lines.push(line);
    for (const waiter of waiters.filter((candidate) => candidate.matches.test(line))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  };
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', onLine);
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', onLine);
  const waitForNextLine = (matches: RegExp, what: string, ms = 10_000): Promise<string> =>
    within(new Promise<string>((resolve) => waiters.push({ matches, resolve })), what, ms);
  const waitForLine = (matches: RegExp, what: string, ms = 10_000): Promise<string> => {
    const seen = lines.find((line) => matches.test(line));
    return seen !== undefined ? Promise.resolve(seen) : waitForNextLine(matches, what, ms);
  };
  const started = waitForLine(/as the polling mechanism/, 'HAProxy binding its listeners');
  const early = exited.then(() => {
    throw new Error(`HAProxy exited before listening:\n${lines.join('\n')}`);
  });
  await Promise.race([started, early]);
  early.catch(() => {});
  await eventually(() => isListening(port), 'HAProxy listening on its frontend');
  return {
    child,
    port,
    lines,
    waitForLine,
    waitForNextLine,
    serverStates: () => serverStates(statsSocket),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await within(exited, 'HAProxy stopping', 5_000).catch(() => child.kill('SIGKILL'));
      }
    },
  };
}

const STATE_NAMES: Record<string, string> = { '0': 'DOWN', '1': 'STARTING', '2': 'UP', '3': 'STOPPING' };

/** Asks HAProxy's runtime API for `show servers state` and reads each server's operational state. */
async function serverStates(statsSocket: string): Promise<Map<string, string>> {
  const socket = net.connect(statsSocket);
  socket.end('show servers state imgcache_nodes\n');
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  await within(once(socket, 'close'), 'the HAProxy runtime API answering', 5_000);
  const states = new Map<string, string>();
  // columns: be_id be_name srv_id srv_name srv_addr srv_op_state ...
  for (const line of text.split('\n')) {
    const columns = line.trim().split(/\s+/);
    if (columns.length < 6 || line.startsWith('#') || !/^\d+$/.test(columns[0] as string)) continue;
    states.set(columns[3] as string, STATE_NAMES[columns[5] as string] ?? (columns[5] as string));
  }
  return states;
}
