/**
 * `imgcache shell` when the server ends its session (docs/CLI.md, exit status): a refusal that closes it (quota
 * exhausted), a key revoked while it is open ([P-66]), an idle timeout ([P-27]). The shell ends at once, runs no line
 * after, and exits 4: the server was reached and refused to go on, which is neither a handshake rejection (3) nor a
 * server not reached (5). The real CLI and server, on 127.0.0.1 port 0.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PACKAGE_ROOT } from '../src/config.ts';
import { CLIENT_BIN, runCommand, SERVER_BIN } from './helpers/processes.ts';
import { makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const FOUR = ['sunset.png', 'checkerboard-dice.png', 'mandelbrot.png', 'terrain-large.png'];

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** A shell whose standard input stays open until the test ends it: lines are written to it one step at a time. */
function openShell(args: string[]) {
  const child = spawn(process.execPath, [CLIENT_BIN, 'shell', ...args], {
    cwd: PACKAGE_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  const onOutput = () => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    onOutput();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    onOutput();
  });
  const exited = once(child, 'exit').then(([status]) => status as number | null);
  return {
    write: (line: string) => child.stdin.write(`${line}\n`),
    /** resolves once stdout holds `text` */
    async stdoutHolds(text: string): Promise<void> {
      while (!stdout.includes(text)) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    exited,
    output: () => ({ stdout, stderr }),
    end: () => child.stdin.end(),
  };
}

test('shell: quota exhausted then exit exits 4, not 5; the lines after the refusal are not run', async () => {
  const live = await startTestServer({ codes: [108, 108] });
  try {
    const port = ['--port', String(live.port)];
    const where = [...port, '--cache-dir', path.join(live.folder, 'downloads')];
    const script = `get ${FOUR.join(' ')}\nexit\n`;
    const withExit = await within(runCommand(CLIENT_BIN, ['shell', ...where], {}, script), 'the shell exiting');
    assert.is(withExit.status, 4, withExit.stderr);
    assert.equal(lines(withExit.stderr), [
      'imgcache: terrain-large.png: refused: the quota of 3 images is used up [quota-exhausted] (the server closed the connection)',
    ]);

    const more = `get ${FOUR.join(' ')}\nlist\nexit\n`;
    // A cache folder of its own: the images held by the first run would be revalidated, free of quota.
    const again = ['shell', '--json', ...port, '--cache-dir', path.join(live.folder, 'again')];
    const json = await within(runCommand(CLIENT_BIN, again, {}, more), 'the shell exiting');
    assert.is(json.status, 4, json.stderr);
    assert.is(json.stderr, '');
    const documents = lines(json.stdout).map((line) => JSON.parse(line) as { images?: unknown[] });
    assert.is(documents.length, 1, 'the get only: the list after the end is not run');
    assert.is(documents[0]?.images?.length, 4);
  } finally {
    await live.stop();
  }
});

test('[P-66] shell: a key revoked while the shell waits for a line ends it at once, status 4, the reason said', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const added = await runCommand(SERVER_BIN, ['clients', 'add', 'alice', '--tier', 'gold', '--database', database]);
  assert.is(added.status, 0, added.stderr);
  const keyFile = path.join(folder, 'alice.key');
  writeFileSync(keyFile, added.stdout, { mode: 0o600 });
  const live = await startTestServer({ folder, database, access: 'keys' });
  try {
    const shell = openShell(['--port', String(live.port), '--key-file', keyFile, '--json']);
    shell.write('list');
    await within(shell.stdoutHolds('"identity":"alice"'), 'the list of the keyed session');
    const revoked = await runCommand(SERVER_BIN, ['clients', 'revoke', 'alice', '--database', database]);
    assert.is(revoked.status, 0, revoked.stderr);
    // Its standard input is still open: the shell ends because the server ended the session.
    const status = await within(shell.exited, 'the shell ending by itself');
    const closed = await within(
      live.waitForEvent((event) => event.type === 'session-closed'),
      'the close on record',
    );
    assert.is(closed.type === 'session-closed' && closed.data.reason, 'identity-revoked');
    assert.is(status, 4, shell.output().stderr);
    const [notice, error] = lines(shell.output().stderr).map((line) => JSON.parse(line) as Record<string, never>);
    assert.equal(notice, {
      notice: { kind: 'revoked', message: 'your key was revoked by the operator', closing: true },
    });
    assert.equal(error, {
      error: {
        code: 'revoked',
        message: 'the server closed the connection: your key was revoked by the operator',
        status: 4,
      },
    });
    shell.end();
  } finally {
    await live.stop();
  }
});

test('[P-27] shell: closed for idleness, the shell ends with status 4 and says why', async () => {
  const live = await startTestServer({ codes: [950], idleTimeoutMs: 300 });
  try {
    const shell = openShell(['--port', String(live.port), '--cache-dir', path.join(live.folder, 'downloads')]);
    const status = await within(shell.exited, 'the shell ending by itself');
    assert.is(status, 4);
    assert.equal(lines(shell.output().stderr), [
      'server: closing the connection: no request for too long',
      'imgcache: the server closed the connection: closing the connection: no request for too long',
    ]);
    shell.end();
  } finally {
    await live.stop();
  }
});

test.run();
