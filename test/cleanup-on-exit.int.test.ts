/**
 * test/helpers/cleanup-on-exit.ts: a test process that is interrupted (SIGTERM, Ctrl-C's SIGINT) or dies of an
 * exception leaves no process it registered running, and no folder it registered on disk. Each case runs a small
 * Node script that starts an idle child process and a temporary folder, registers both, says their pid and path,
 * and is then ended (by a signal, or told on its input to throw); the test waits for the script's exit, then for its child's end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PACKAGE_ROOT } from '../src/config.ts';
import { eventually } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** The script: its child idles for a minute at most, so that even a failed test leaves nothing for long. */
const SCRIPT = `
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanUpOnExit } from './test/helpers/cleanup-on-exit.ts';
const folder = mkdtempSync(path.join(os.tmpdir(), 'imgcache-cleanup-'));
cleanUpOnExit(() => rmSync(folder, { recursive: true, force: true }));
const idler = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
cleanUpOnExit(() => idler.kill('SIGKILL'));
idler.once('spawn', () => {
  process.stdout.write(JSON.stringify({ pid: idler.pid, folder }) + '\\n');
});
process.stdin.once('data', () => {
  if (process.argv[1] === 'throw') throw new Error('a test blew up');
  if (process.argv[1] === 'reject') Promise.reject(new Error('a test forgot a rejection'));
});
`;

interface Started {
  script: ChildProcess;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  pid: number;
  folder: string;
  stderr: () => string;
}

async function startScript(mode: 'wait' | 'throw' | 'reject'): Promise<Started> {
  const script = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT, mode], {
    cwd: PACKAGE_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = once(script, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let stderr = '';
  script.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: script.stdout as NodeJS.ReadableStream });
  const [line] = (await within(once(lines, 'line'), 'the script naming its child', 10_000)) as [string];
  const { pid, folder } = JSON.parse(line) as { pid: number; folder: string };
  return { script, exited, pid, folder, stderr: () => stderr };
}

/**
 * Whether the process `pid` has ended: no such process (ESRCH), or one killed and not yet reaped (a zombie: it runs
 * nothing and holds nothing; its parent gone, it waits for init to reap it, which some container inits never do).
 */
function ended(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    throw error;
  }
  try {
    return /^Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, ''));
  } catch {
    return false;
  }
}

/** Whatever the outcome, the test leaves nothing either. */
function tidy(started: Started): void {
  started.script.kill('SIGKILL');
  if (!ended(started.pid)) process.kill(started.pid, 'SIGKILL');
  rmSync(started.folder, { recursive: true, force: true });
}

const CASES = [
  { how: 'SIGTERM', mode: 'wait', signal: 'SIGTERM', status: 143 },
  { how: 'SIGINT (Ctrl-C)', mode: 'wait', signal: 'SIGINT', status: 130 },
  { how: 'an uncaught exception', mode: 'throw', signal: null, status: 1 },
  { how: 'an unhandled rejection', mode: 'reject', signal: null, status: 1 },
] as const;

for (const { how, mode, signal, status } of CASES) {
  test(`a test process ended by ${how} exits with status ${status} and leaves no child process nor folder`, async () => {
    const started = await startScript(mode);
    try {
      assert.ok(!ended(started.pid), 'the child runs before the script ends');
      assert.ok(existsSync(started.folder), 'the folder exists before the script ends');
      if (signal !== null) started.script.kill(signal);
      else started.script.stdin?.write('now\n');
      const [code, killedBy] = await within(started.exited, `the script exiting after ${how}`, 10_000);
      await eventually(() => ended(started.pid), `the script's child (pid ${started.pid}) gone`, 5_000);
      assert.not.ok(existsSync(started.folder), 'the folder is removed');
      assert.is(killedBy, null, `the script exits, not killed by the signal (stderr: ${started.stderr()})`);
      assert.is(code, status, `stderr: ${started.stderr()}`);
    } finally {
      tidy(started);
    }
  });
}

test.run();
