/**
 * Runs the real commands (`imgcache-server`, `imgcache`) as child processes, the way a person runs them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PACKAGE_ROOT } from '../../src/config.ts';
import { cleanUpOnExit } from './cleanup-on-exit.ts';

// The commands run from their TypeScript sources (the installed ones run the build in dist/, which may be stale).
export const SERVER_BIN = path.join(PACKAGE_ROOT, 'test/helpers/bin/imgcache-server.js');
export const CLIENT_BIN = path.join(PACKAGE_ROOT, 'test/helpers/bin/imgcache.js');

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  /** every JSON log line the server printed so far */
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/**
 * Starts `imgcache-server` on a free port and resolves once it logs that it listens. A test process that ends before
 * the server has exited (an exception, Ctrl-C, a kill) kills it on its way out (./cleanup-on-exit.ts).
 */
export async function spawnServer(args: string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, [SERVER_BIN, '--port', '0', '--log-format', 'json', ...args], {
    cwd: PACKAGE_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forget = cleanUpOnExit(() => child.kill('SIGKILL'));
  const logs: Array<Record<string, unknown>> = [];
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  exited.then(forget, forget);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg === 'listening') resolve(Number(entry.port));
    });
    exited.then((code) => reject(new Error(`the server exited with ${code} before listening: ${stderr}`)));
  });
  return { child, port, logs, exited };
}

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; `input`, when given, is its whole standard input (else it has none). */
export async function runCommand(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  input?: string,
): Promise<CommandResult> {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: PACKAGE_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  child.stdin.end(input); // no input: an empty one, read to its end at once
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [status] = (await once(child, 'exit')) as [number | null];
  return { status, stdout, stderr };
}
