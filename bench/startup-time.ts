/**
 * Start-up: the wall time of one CLI command, from the shell's fork to its exit, against a local server, the way a
 * person or a script pays it. `imgcache list` as installed (the JavaScript `npm install` compiled into dist/), the same
 * from the TypeScript sources through tsx (what every command paid before), through `npm run`, Node starting and doing
 * nothing, and `redis-cli ping` against a local redis-server, the yardstick of a CLI that feels instant. Also the
 * server's own start, to `listening`, compiled and through tsx (what `npm start` costs).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { PACKAGE_ROOT } from '../src/config.ts';
import { CLIENT_BIN, freePort, IMGCACHE_SERVER_BIN } from './server-processes.ts';
import { commandVersion, hasCommand } from './system-packages.ts';

export interface StartupRow {
  what: string;
  command: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

export interface StartupTime {
  rows: StartupRow[];
  /** whether dist/ was there (the commands run the sources through tsx without it) */
  compiled: boolean;
  /** redis-cli's version, or why it was not measured */
  redis: string;
}

/** redis-cli comes in Debian's redis-tools, redis-server in redis-server: installed when missing and allowed. */
function ensureRedis(install: boolean, log: (line: string) => void): string | null {
  const missing = [
    ['redis-cli', 'redis-tools'],
    ['redis-server', 'redis-server'],
  ].filter(([command]) => !hasCommand(command as string));
  if (missing.length === 0) return null;
  if (!install) return `not installed (${missing.map(([, pkg]) => pkg).join(', ')}; the run did not install packages)`;
  log(`installing ${missing.map(([, pkg]) => pkg).join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    execFileSync('apt-get', ['install', '-y', '-qq', ...missing.map(([, pkg]) => pkg as string)], {
      stdio: 'ignore',
      env,
    });
    return null;
  } catch (error) {
    return `could not be installed: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** Runs a command `runs` times (after one run to warm the disk cache); its wall time each time, in ms. */
function timeCommand(what: string, file: string, args: string[], runs: number, env = process.env): StartupRow {
  const samples: number[] = [];
  for (let run = 0; run <= runs; run++) {
    const started = performance.now();
    const result = spawnSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env, timeout: 30_000 });
    const elapsed = performance.now() - started;
    if (result.status !== 0) {
      throw new Error(`${what}: ${file} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
    }
    if (run > 0) samples.push(elapsed);
  }
  samples.sort((a, b) => a - b);
  // Paths are shown from the package's folder, never as this machine spells them.
  const shown = (arg: string) => (arg === PACKAGE_ROOT ? '.' : path.relative(PACKAGE_ROOT, arg) || arg);
  const command = [path.basename(file), ...args.map(shown)]
    .map((word) => (word.startsWith('..') ? path.basename(word) : word))
    .join(' ');
  return {
    what,
    command,
    runs,
    medianMs: samples[Math.floor(samples.length / 2)] ?? 0,
    minMs: samples[0] ?? 0,
    maxMs: samples.at(-1) ?? 0,
  };
}

/** Starts a process and resolves once `ready` matches a line of its stdout; rejects if it exits before. */
async function startUntil(file: string, args: string[], ready: (line: string) => boolean): Promise<ChildProcess> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (ready(line)) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`${path.basename(file)} exited ${code} before it was ready: ${stderr}`)),
    );
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The server's start: spawn to its `listening` log line, `runs` times. */
async function timeServerStart(what: string, args: string[], serverArgs: string[], runs: number): Promise<StartupRow> {
  const samples: number[] = [];
  for (let run = 0; run <= runs; run++) {
    const started = performance.now();
    const child = await startUntil(process.execPath, [...args, ...serverArgs], (line) => line.includes('"listening"'));
    const elapsed = performance.now() - started;
    await stop(child);
    if (run > 0) samples.push(elapsed);
  }
  samples.sort((a, b) => a - b);
  return {
    what,
    command: ['node', ...args.map((arg) => path.relative(PACKAGE_ROOT, arg) || arg)].join(' '),
    runs,
    medianMs: samples[Math.floor(samples.length / 2)] ?? 0,
    minMs: samples[0] ?? 0,
    maxMs: samples.at(-1) ?? 0,
  };
}

export async function measureStartup(options: {
  workDir: string;
  imageDir: string;
  runs: number;
  install: boolean;
  log: (line: string) => void;
}): Promise<StartupTime> {
  const { workDir, imageDir, runs, log } = options;
  const compiled = existsSync(path.join(PACKAGE_ROOT, 'dist/client/run-cli.js'));
  const serverArgs = (database: string) => [
    '--port',
    '0',
    '--cache-dir',
    imageDir,
    '--database',
    path.join(workDir, database),
    '--log-format',
    'json',
    '--capacity',
    '64',
  ];
  const rows: StartupRow[] = [];
  log(`start-up: the server, compiled${compiled ? '' : ' (no dist/: from the sources)'} and through tsx`);
  rows.push(
    await timeServerStart(
      'imgcache-server to listening (compiled, npm start)',
      [IMGCACHE_SERVER_BIN],
      serverArgs('s1.sqlite'),
      Math.min(runs, 5),
    ),
  );
  rows.push(
    await timeServerStart(
      'imgcache-server to listening (TypeScript through tsx)',
      ['--import', 'tsx', path.join(PACKAGE_ROOT, 'src/main.ts')],
      serverArgs('s2.sqlite'),
      Math.min(runs, 5),
    ),
  );

  let port = 0;
  const server = await startUntil(process.execPath, [IMGCACHE_SERVER_BIN, ...serverArgs('startup.sqlite')], (line) => {
    if (!line.includes('"listening"')) return false;
    port = Number((JSON.parse(line) as { port: number }).port);
    return true;
  });
  try {
    const where = ['--port', String(port), '--cache-dir', path.join(workDir, 'startup-downloads')];
    log(`start-up: imgcache list, ${runs} runs each way`);
    rows.push(timeCommand('node, doing nothing', process.execPath, ['-e', ''], runs));
    rows.push(
      timeCommand('imgcache list (as installed: dist/)', process.execPath, [CLIENT_BIN, 'list', ...where], runs),
    );
    rows.push(
      timeCommand(
        'imgcache list (TypeScript through tsx)',
        process.execPath,
        ['--import', 'tsx', path.join(PACKAGE_ROOT, 'client/run-cli.ts'), 'list', ...where],
        runs,
      ),
    );
    const npm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
    if (npm) {
      rows.push(
        timeCommand(
          'npm run -s imgcache -- list',
          npm,
          ['run', '-s', '--prefix', PACKAGE_ROOT, 'imgcache', '--', 'list', ...where],
          Math.min(runs, 5),
        ),
      );
    }
  } finally {
    await stop(server);
  }

  const missing = ensureRedis(options.install, log);
  let redis = missing ?? commandVersion('redis-cli', ['--version']) ?? 'redis-cli';
  if (!missing) {
    const redisPort = await freePort();
    let redisServer: ChildProcess | null = null;
    try {
      redisServer = await startUntil(
        'redis-server',
        ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', workDir],
        (line) => line.includes('Ready to accept connections'),
      );
      log(`start-up: redis-cli ping, ${runs} runs`);
      rows.push(timeCommand('redis-cli ping', 'redis-cli', ['-p', String(redisPort), 'ping'], runs));
    } catch (error) {
      redis = `not measured: ${(error as Error).message.split('\n')[0]}`;
    } finally {
      if (redisServer) await stop(redisServer);
    }
  }
  return { rows, compiled, redis };
}
