/**
 * `imgcache-server`'s operator errors, as an operator meets them: each refused at once, in one short line with its
 * code, status 2, before anything listens; its --version; the warnings about a cache folder that serves nothing.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCommand, SERVER_BIN, spawnServer } from './helpers/processes.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const folder = makeTemporaryFolder();
const database = path.join(folder, 'history.sqlite');
const server = (args: string[]) => runCommand(SERVER_BIN, [...args, '--database', database, '--log-format', 'json']);

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

test.after(() => rmSync(folder, { recursive: true, force: true }));

test('operator errors are one coded line on stderr, status 2, and nothing starts', async () => {
  const cases: Array<[string[], RegExp]> = [
    [
      ['--port', '99999'],
      /^imgcache-server: cannot start: --port \(IMGCACHE_PORT\) must be an integer from 0 to 65535, not '99999' \[bad-config\]$/,
    ],
    [['--port', ''], /--port \(IMGCACHE_PORT\) must be an integer from 0 to 65535, not '' \[bad-config\]$/],
    [['--capacity', '1e2'], /--capacity \(IMGCACHE_CAPACITY\) must be an integer >= 1, not '1e2' \[bad-config\]$/],
    [
      ['--log-level', 'verbose'],
      /--log-level takes fatal, error, warn, info, debug, trace, silent, not 'verbose' \[bad-config\]$/,
    ],
    [['--cache-dir', path.join(folder, 'nowhere')], /--cache-dir .*nowhere: no such folder \[bad-config\]$/],
  ];
  for (const [args, expected] of cases) {
    const result = await server(args);
    assert.is(result.status, 2, args.join(' '));
    assert.is(result.stdout, '', `${args.join(' ')}: nothing logged, nothing listening`);
    const said = lines(result.stderr);
    assert.is(said.length, 1, result.stderr);
    assert.match(said[0] ?? '', expected);
  }
});

test("an unknown option is one line and the usage hint, not the parser's explanation and the whole help", async () => {
  const result = await server(['--fly']);
  assert.is(result.status, 2);
  assert.equal(lines(result.stderr), [
    "imgcache-server: unknown option '--fly' [bad-usage]",
    "run 'imgcache-server --help' for usage",
  ]);
  const command = await server(['frobnicate']);
  assert.is(command.status, 2);
  assert.is(lines(command.stderr).length, 2);
});

test('imgcache-server --version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(path.join(import.meta.dirname, '../package.json'), 'utf8'));
  const result = await runCommand(SERVER_BIN, ['--version']);
  assert.is(result.status, 0);
  assert.is(result.stdout, `imgcache-server ${version}\n`);
});

test('a cache folder with no images: the server starts and warns about the files it skips and the empty catalog', async () => {
  const images = path.join(folder, 'images');
  mkdirSync(images);
  writeFileSync(path.join(images, 'notes.txt'), 'not an image');
  const running = await spawnServer(['--database', database, '--cache-dir', images]);
  try {
    // The warnings follow 'listening' at once: wait for the log lines that carry them (bounded), not for a time.
    const warningsOf = () => running.logs.filter((entry) => entry.level === 40);
    await within(
      new Promise<void>((resolve) => {
        const onData = () => setImmediate(check);
        const check = () => {
          if (warningsOf().length < 2) return;
          running.child.stdout?.off('data', onData);
          resolve();
        };
        running.child.stdout?.on('data', onData);
        check();
      }),
      'two warnings',
      5_000,
    );
    const warnings = warningsOf();
    const skipped = warnings.find((entry) => String(entry.msg).includes('not images'));
    assert.ok(skipped, JSON.stringify(running.logs));
    assert.equal(skipped?.files, ['notes.txt']);
    assert.ok(warnings.some((entry) => String(entry.msg).startsWith('no images to serve')));
  } finally {
    running.child.kill('SIGKILL');
    await running.exited;
  }
});

test('`history | head`: a reader that stops reading early ends the command quietly, status 0', async () => {
  const registered = await server(['clients', 'add', 'piped', '--tier', 'gold']);
  assert.is(registered.status, 0, registered.stderr);
  const child = spawn(process.execPath, [SERVER_BIN, 'history', '--database', database], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.destroy(); // the reader is gone before the first byte, as `| head -c 1` soon is
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [status] = (await within(once(child, 'exit'), 'history exits', 10_000)) as [number | null];
  assert.is(stderr, '');
  assert.is(status, 0);
});

test.run();
