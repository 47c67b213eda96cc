/**
 * The client's own speed, where a user feels it, with the real CLI (`client/bin/imgcache.js`, the JavaScript
 * `npm install` compiles into dist/) against a real imgcache server:
 *
 * - one large image: `imgcache get` into an empty cache folder (hash checked, temporary file renamed) against
 *   `curl -o` of the same file from nginx (each setup of the bench, the faster counts), wall time, fork to exit;
 * - many images: `imgcache refresh` of a cache folder holding every small image (each revalidated, not modified; the
 *   server's free-request burst raised to hold them all), and `imgcache get` of a few of them into an empty folder, pipelined (the default) against one at a time
 *   (`IMGCACHE_MAX_IN_FLIGHT=1`), in images per second of wall time, the process's start included.
 *
 * The images are made in the bench's temporary folder, never kept. Runs of the two sides alternate and each keeps
 * its fastest: noise only ever slows a run down.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PACKAGE_ROOT } from '../src/config.ts';
import { sizeLabel } from './bench-fixtures.ts';
import { NGINX_SETUPS, type NginxProcess, startNginx } from './nginx.ts';
import { CLIENT_BIN, startImgcacheServer } from './server-processes.ts';
import { hasCommand } from './system-packages.ts';

/** How the bench asks the CLI for one request at a time (docs/CLI.md). */
export const ONE_AT_A_TIME_ENV: Readonly<Record<string, string>> = Object.freeze({ IMGCACHE_MAX_IN_FLIGHT: '1' });

export interface ClientSpeedOptions {
  workDir: string;
  tiersFile: string;
  /** the large image's size, bytes */
  largeBytes: number;
  /** small images made for the many-images runs, and their size in bytes */
  manyImages: number;
  manyBytes: number;
  /** how many of them `get` fetches */
  getImages: number;
  /** timed runs of each side */
  runs: number;
  /** compare with curl from nginx */
  nginx: boolean;
  log: (line: string) => void;
}

export interface TimedCommand {
  command: string;
  /** wall time of every run, seconds */
  seconds: number[];
  bestSeconds: number;
}

export interface LargeDownload {
  bytes: number;
  label: string;
  imgcache: TimedCommand & { megabytesPerSecond: number };
  /** curl from the faster nginx setup; null when nginx was not run or curl is not installed */
  curl: (TimedCommand & { megabytesPerSecond: number; nginx: string }) | null;
  /** imgcache's speed over curl's (target >= 0.8) */
  ratio: number | null;
}

export interface PipelineRun {
  command: 'refresh' | 'get';
  what: string;
  images: number;
  pipelined: TimedCommand & { imagesPerSecond: number };
  oneAtATime: TimedCommand & { imagesPerSecond: number };
  /** pipelined images/s over one-at-a-time images/s */
  ratio: number;
}

export interface ClientSpeed {
  /** whether dist/ was there (without it the CLI runs its sources through tsx) */
  compiled: boolean;
  /** the server's --free-request-burst: every revalidation of one refresh served at once [P-48] */
  freeRequestBurst: number;
  large: LargeDownload;
  pipelines: PipelineRun[];
}

const MIB = 1024 * 1024;
const WRITE_CHUNK = 16 * MIB;
const COMMAND_DEADLINE_MS = 300_000;

/** Random bytes (nothing on the way can compress them), written in pieces: the bench never holds the whole file. */
function writeRandomFile(file: string, bytes: number): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'w', 0o644);
  try {
    for (let written = 0; written < bytes; written += WRITE_CHUNK) {
      const piece = randomBytes(Math.min(WRITE_CHUNK, bytes - written));
      hash.update(piece);
      writeSync(fd, piece);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** The file's sha256, read in pieces (the large image is never held whole). */
function sha256Of(file: string): string {
  const hash = createHash('sha256');
  const piece = Buffer.allocUnsafe(WRITE_CHUNK);
  const fd = openSync(file, 'r');
  try {
    for (let read = readSync(fd, piece); read > 0; read = readSync(fd, piece)) hash.update(piece.subarray(0, read));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Runs a command to its end; its wall time, fork to exit, in seconds. Fails on any status but 0. */
function timed(file: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): number {
  const started = performance.now();
  const result = spawnSync(file, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
    timeout: COMMAND_DEADLINE_MS,
  });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) {
    throw new Error(`${path.basename(file)} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  return seconds;
}

function summary(command: string, seconds: number[]): TimedCommand {
  return { command, seconds, bestSeconds: Math.min(...seconds) };
}

/** [P-48] The server's default budget of requests that cost no quota: a burst of 100, then 20 a second. */
export const DEFAULT_FREE_REQUEST_BURST = 100;
export const DEFAULT_FREE_REQUESTS_PER_SECOND = 20;

/**
 * A not-modified revalidation costs no quota, so it takes from the session's free-request budget [P-48]: with the
 * default burst a refresh of 1,000 images would wait for the budget, (1,000 - 100) / 20 = 45 s, whatever the client
 * does. The server measured holds a burst of every image, so that what is timed is the client.
 */
function freeRequestBurst(images: number): number {
  return Math.max(DEFAULT_FREE_REQUEST_BURST, images);
}

export async function measureClientSpeed(options: ClientSpeedOptions): Promise<ClientSpeed> {
  const { workDir, log } = options;
  const imageDir = path.join(workDir, 'client-images');
  mkdirSync(imageDir, { recursive: true, mode: 0o755 });
  const largeName = `large-${options.largeBytes}.png`;
  const largeSha256 = writeRandomFile(path.join(imageDir, largeName), options.largeBytes);
  const manyNames = Array.from(
    { length: options.manyImages },
    (_, index) => `many-${String(index).padStart(4, '0')}.png`,
  );
  for (const name of manyNames) writeRandomFile(path.join(imageDir, name), options.manyBytes);
  const server = await startImgcacheServer({
    cacheDir: imageDir,
    database: path.join(workDir, 'client-speed.sqlite'),
    capacity: 4,
    tiersFile: options.tiersFile,
    logLevel: 'warn',
    serverOptions: ['--free-request-burst', String(freeRequestBurst(options.manyImages))],
  });
  const nginx: NginxProcess[] = [];
  let result: ClientSpeed;
  try {
    // Without curl (a run that installs nothing) the download is measured alone.
    if (options.nginx && hasCommand('curl')) {
      for (const [index, setup] of NGINX_SETUPS.entries()) {
        nginx.push(await startNginx(setup, path.join(workDir, `client-nginx-${index}`), imageDir));
      }
    }
    const cli = (cacheDir: string, ...args: string[]) => [
      CLIENT_BIN,
      ...args,
      ...['--port', String(server.port), '--cache-dir', cacheDir],
    ];
    const large = measureLargeDownload(options, { name: largeName, sha256: largeSha256 }, cli, nginx);
    log(
      `client: imgcache get of ${large.label} ${large.imgcache.megabytesPerSecond.toFixed(0)} MB/s` +
        (large.curl ? `, curl ${large.curl.megabytesPerSecond.toFixed(0)} MB/s` : ''),
    );
    const pipelines = measurePipelines(options, manyNames, cli);
    for (const run of pipelines) {
      log(
        `client: ${run.what}: ${run.pipelined.imagesPerSecond.toFixed(0)} images/s pipelined, ` +
          `${run.oneAtATime.imagesPerSecond.toFixed(0)} one at a time`,
      );
    }
    result = {
      compiled: existsSync(path.join(PACKAGE_ROOT, 'dist/client/run-cli.js')),
      freeRequestBurst: freeRequestBurst(options.manyImages),
      large,
      pipelines,
    };
  } finally {
    for (const running of nginx) await running.stop();
    await server.stop();
  }
  if (server.stderr().trim() !== '') throw new Error(`imgcache wrote on stderr: ${server.stderr()}`);
  return result;
}

type CliArgs = (cacheDir: string, ...args: string[]) => string[];

function measureLargeDownload(
  options: ClientSpeedOptions,
  image: { name: string; sha256: string },
  cli: CliArgs,
  nginx: readonly NginxProcess[],
): LargeDownload {
  const target = path.join(options.workDir, 'client-large');
  const curlFile = path.join(options.workDir, 'curl-large.png');
  const ours: number[] = [];
  const curls = new Map<NginxProcess, number[]>(nginx.map((server) => [server, []]));
  for (let run = 0; run < options.runs; run++) {
    rmSync(target, { recursive: true, force: true });
    ours.push(timed(process.execPath, cli(target, 'get', image.name)));
    const downloaded = path.join(target, image.name);
    if (statSync(downloaded).size !== options.largeBytes) throw new Error('imgcache get: the file is not whole');
    if (run === 0 && sha256Of(downloaded) !== image.sha256) throw new Error('imgcache get: the bytes differ');
    rmSync(target, { recursive: true, force: true });
    for (const [server, seconds] of curls) {
      rmSync(curlFile, { force: true });
      const url = `http://127.0.0.1:${server.port}/${image.name}`;
      seconds.push(timed('curl', ['--silent', '--show-error', '--fail', '-o', curlFile, url]));
      if (statSync(curlFile).size !== options.largeBytes) throw new Error('curl: the file is not whole');
      rmSync(curlFile, { force: true });
    }
  }
  const speed = (timing: TimedCommand) => options.largeBytes / 1e6 / timing.bestSeconds;
  const imgcache = summary(`imgcache get ${image.name}`, ours);
  let curl: LargeDownload['curl'] = null;
  for (const [server, seconds] of curls) {
    const timing = summary(`curl --silent --show-error --fail -o ${path.basename(curlFile)} URL`, seconds);
    if (curl === null || timing.bestSeconds < curl.bestSeconds) {
      curl = { ...timing, megabytesPerSecond: speed(timing), nginx: server.setup.name };
    }
  }
  const ourSpeed = speed(imgcache);
  return {
    bytes: options.largeBytes,
    label: sizeLabel(options.largeBytes),
    imgcache: { ...imgcache, megabytesPerSecond: ourSpeed },
    curl,
    ratio: curl ? ourSpeed / curl.megabytesPerSecond : null,
  };
}

function measurePipelines(options: ClientSpeedOptions, names: readonly string[], cli: CliArgs): PipelineRun[] {
  const held = path.join(options.workDir, 'client-refresh');
  const fetched = path.join(options.workDir, 'client-get');
  // The cache folder refresh revalidates: every image downloaded once, in one session.
  timed(process.execPath, cli(held, 'get', ...names));
  const wanted = names.slice(0, options.getImages);
  const runs: Array<{
    kind: PipelineRun['command'];
    what: string;
    images: number;
    args: string[];
    command: string;
    before: () => void;
  }> = [
    {
      kind: 'refresh',
      what: `refresh of ${names.length} cached images (not modified)`,
      images: names.length,
      args: cli(held, 'refresh'),
      command: 'imgcache refresh',
      before: () => {},
    },
    {
      kind: 'get',
      what: `get of ${wanted.length} images into an empty cache folder`,
      images: wanted.length,
      args: cli(fetched, 'get', ...wanted),
      command: `imgcache get <${wanted.length} names>`,
      before: () => rmSync(fetched, { recursive: true, force: true }),
    },
  ];
  const oneAtATimeEnv = Object.entries(ONE_AT_A_TIME_ENV)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
  return runs.map(({ kind, what, images, args, command, before }) => {
    const pipelined: number[] = [];
    const oneAtATime: number[] = [];
    for (let run = 0; run < options.runs; run++) {
      before();
      pipelined.push(timed(process.execPath, args));
      before();
      oneAtATime.push(timed(process.execPath, args, ONE_AT_A_TIME_ENV));
    }
    const perSecond = (timing: TimedCommand) => ({ ...timing, imagesPerSecond: images / timing.bestSeconds });
    const fast = perSecond(summary(command, pipelined));
    const slow = perSecond(summary(`${oneAtATimeEnv} ${command}`, oneAtATime));
    return {
      command: kind,
      what,
      images,
      pipelined: fast,
      oneAtATime: slow,
      ratio: fast.imagesPerSecond / slow.imagesPerSecond,
    };
  });
}
