/**
 * The compiled commands, as `npm install` leaves them: the build (the `prepare` script's `npm run build`) writes
 * JavaScript into dist/, and the installed `imgcache` and `imgcache-server` run it, worker threads included (the
 * history's commit thread, the usage worker). The other tests run the TypeScript sources; this one runs the build.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PACKAGE_ROOT } from '../src/config.ts';
import { runCommand } from './helpers/processes.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const INSTALLED_CLIENT = path.join(PACKAGE_ROOT, 'client/bin/imgcache.js');
const INSTALLED_SERVER = path.join(PACKAGE_ROOT, 'src/bin/imgcache-server.js');
const DIST = path.join(PACKAGE_ROOT, 'dist');

test('npm run build writes dist/: the commands, the worker threads, no TypeScript loader in them', () => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const build = spawnSync(npm, ['run', '-s', 'build'], { cwd: PACKAGE_ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.is(build.status, 0, build.stdout + build.stderr);
  for (const file of ['client/run-cli.js', 'src/main.js', 'db/commit-thread.js', 'db/usage-worker.js']) {
    const compiled = path.join(DIST, file);
    assert.ok(existsSync(compiled), file);
    const text = readFileSync(compiled, 'utf8');
    assert.not.match(text, /from 'tsx|import\('tsx|\.ts'/, `${file} imports no TypeScript`);
  }
});

test('the installed commands run the build: a server with its history on a thread, list, get, usage, --version', async () => {
  const folder = makeTemporaryFolder();
  let server: ChildProcess | null = null;
  try {
    server = spawn(
      process.execPath,
      [
        INSTALLED_SERVER,
        ...['--port', '0', '--log-format', 'json', '--history-thread', 'on', '--codes', '950'],
        ...['--database', path.join(folder, 'history.sqlite'), '--cache-dir', SAMPLE_IMAGES],
      ],
      { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = once(server, 'exit');
    const port = await within(
      new Promise<number>((resolve, reject) => {
        createInterface({ input: server?.stdout as NodeJS.ReadableStream }).on('line', (line) => {
          const entry = JSON.parse(line) as { msg?: string; port?: number };
          if (entry.msg === 'listening') resolve(Number(entry.port));
        });
        exited.then(([code]) => reject(new Error(`the server exited with ${code}`)));
      }),
      'the compiled server listening',
    );
    const where = ['--port', String(port), '--cache-dir', path.join(folder, 'downloads')];
    const imgcache = (args: string[]) => runCommand(INSTALLED_CLIENT, args);

    const list = await imgcache(['list', ...where]);
    assert.is(list.status, 0, list.stderr);
    assert.match(list.stdout, /code 950, tier platinum/);
    const get = await imgcache(['get', 'sunset.png', ...where]);
    assert.is(get.status, 0, get.stderr);
    assert.ok(
      readFileSync(path.join(folder, 'downloads', 'sunset.png')).equals(
        readFileSync(path.join(SAMPLE_IMAGES, 'sunset.png')),
      ),
    );
    // the usage document is built by the usage worker, started from dist/ too
    const usage = await imgcache(['usage', '--json', ...where]);
    assert.is(usage.status, 0, usage.stderr);
    const document = JSON.parse(usage.stdout) as { clients: Array<{ requests: Array<{ image: string }> }> };
    assert.equal(
      document.clients.flatMap((client) => client.requests.map((request) => request.image)),
      ['sunset.png'],
    );
    const version = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;
    assert.is((await imgcache(['--version'])).stdout, `imgcache ${version}\n`);
    assert.is((await runCommand(INSTALLED_SERVER, ['--version'])).stdout, `imgcache-server ${version}\n`);
  } finally {
    server?.kill('SIGKILL');
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
