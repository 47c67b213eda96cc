/**
 * `imgcache`: the scriptable client. One command per run (`list`, `get`, `refresh`, `usage`), or `shell` to type the
 * commands at a prompt or pipe them in. Each run is a session of its own (a new name, code and quota).
 *
 * Conventions (docs/CLI.md): the result goes to stdout and nothing else does; errors and diagnostics go to stderr, so
 * `imgcache usage > usage.json` never writes a refusal into the file. With `--json` each command prints one JSON
 * document of a documented shape, and every error is one JSON line on stderr. The exit status says what happened
 * (EXIT below), so scripts can branch on it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ConnectionClosedError, type ImageInfo, RejectedError, ServerError } from '../src/protocol/index.ts';
import { formatFetch, formatListWithMarks, formatRefresh } from './cache-report.ts';
import { KEY_ON_COMMAND_LINE, readClientKey } from './client-key.ts';
import { DEFAULT_CACHE_DIR } from './download.ts';
import { formatBytes, formatReject } from './format.ts';
import { DEFAULT_HOST, DEFAULT_PORT, ImgcacheClient, type UsageFilters } from './imgcache-client.ts';
import { type FetchOutcome, type FetchSettled, LocalCache, type LocalState } from './local-cache.ts';
import { leftUndone, MAX_IN_FLIGHT } from './pipeline.ts';
import { refreshAll } from './refresh.ts';
import { type ClientTlsOptions, clientTlsOptions } from './tls-connect.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, rejected: 3, refused: 4, unreachable: 5 } as const;

/** The package's version: package.json is one folder up from client/, two from the compiled dist/client/. */
export function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as Record<string, unknown>;
      if (manifest.name === 'imgcache' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // not this folder: try the next one up
    }
  }
  return 'unknown';
}

/** Each command: its synopsis and summary (one line of the overview) and its own help (`imgcache help <command>`). */
const COMMANDS: Readonly<Record<string, { synopsis: string; summary: string; about: string }>> = {
  list: {
    synopsis: 'list',
    summary: "the server's images, marked not downloaded / current / changed, and who you are",
    about:
      'The server\'s images, each marked "not downloaded", "current" or "changed on the server" against the cache\n' +
      'folder, and who you are (name, code, tier, quota). Costs no quota.\n' +
      '--json: {"session":{...},"quota":{...},"images":[{"name","bytes","modified","sha256","local"}]}',
  },
  get: {
    synopsis: 'get <image> [...]',
    summary: 'download images into the cache folder (one session for all of them)',
    about:
      'Downloads images into the cache folder, all in one session. An image already held is only revalidated by its\n' +
      'hash ("not modified", free of quota). An image that fails (not on the server) is reported on stderr and the\n' +
      'others are still fetched; the exit status is then that of the first failure.\n' +
      '--json: {"images":[{"name","status":"downloaded|not-modified|failed|skipped","path","bytes","sha256",\n' +
      '         "error":{"code","message"}}],"quota":{...}}',
  },
  refresh: {
    synopsis: 'refresh',
    summary: 'revalidate every downloaded image; download only those that changed',
    about:
      'Revalidates every downloaded image at once; downloads only those that changed on the server.\n' +
      '--json: {"images":[{"name","status":"not-modified|downloaded|gone|failed|skipped",...}],"quota":{...}}',
  },
  usage: {
    synopsis: 'usage [--output F]',
    summary: "every client's history as JSON (platinum; with a key, your own at any tier)",
    about:
      "Every client's history as JSON (platinum tier only; with a key, your own sessions' at any tier).\n" +
      '--client NAME: one session; --since T, --until T (ISO-8601): the sessions admitted in that range;\n' +
      '--output F: write it to F instead of stdout.\n' +
      '--json: the document on one line (pretty-printed without); with --output: {"output","bytes"}',
  },
  shell: {
    synopsis: 'shell',
    summary: 'one session for many commands, typed at a prompt or piped in',
    about:
      'One session for many commands: type list, get <image>, refresh, usage, exit, help at a prompt, or pipe them\n' +
      "in (printf 'list\\nget sunset.png\\n' | imgcache shell). Each answer is printed as its command prints it.\n" +
      'When the server ends the session (quota exhausted, key revoked, idle, shutting down) the shell ends at once,\n' +
      'the lines after it not run. The exit status is that of the last failure: 4 for a session the server ended, 5 for\n' +
      'a connection lost.',
  },
  dashboard: {
    synopsis: '[dashboard]',
    summary: 'the full-screen dashboard (on a terminal, where it is the default)',
    about: 'The full-screen dashboard (on a terminal). `imgcache` with no command starts it on a terminal.',
  },
  help: {
    synopsis: 'help [command]',
    summary: 'this overview, or one command in detail',
    about: 'This overview, or one command in detail.',
  },
};

const COMMON_OPTIONS = `options:
  --host H         server address (default ${DEFAULT_HOST}; env IMGCACHE_HOST)
  --port P         server port (default ${DEFAULT_PORT}; env IMGCACHE_PORT)
  --cache-dir D    where downloads go (default ./${DEFAULT_CACHE_DIR}; env IMGCACHE_CLIENT_CACHE)
  --key-file F     the client's key, for a server that admits registered clients (env IMGCACHE_KEY_FILE, or the
                   key itself in IMGCACHE_KEY; never on the command line, where ps shows it)
  --max-in-flight N
                   get and refresh send up to N requests ahead of their answers (pipelined), 1 to ${MAX_IN_FLIGHT}
                   (default ${MAX_IN_FLIGHT}; 1: one at a time; env IMGCACHE_MAX_IN_FLIGHT)
  --tls            connect with TLS; the server's certificate must be valid for H and signed by a CA of the
                   system's store (env IMGCACHE_TLS=1)
  --tls-ca F       trust the CA certificates in F (PEM; a self-signed server certificate is its own CA) instead of
                   the system's store; implies --tls (env IMGCACHE_TLS_CA)
  --json           print the result as JSON (shapes: imgcache help <command>); errors as JSON lines on stderr
  -h, --help       this text; imgcache help <command> for one command
  -V, --version    the version`;

const EXIT_HELP = `exit status: 0 done, 1 failed, 2 bad usage, 3 rejected by the server at the handshake (full, key
             refused or revoked, version), 4 a request was refused (quota exhausted, not found, not allowed) or the
             server ended the session (key revoked, idle, shutting down), 5 no imgcache server reached
             (also: its TLS certificate is not trusted or not for this host, or one side does not speak TLS), or
             the connection to it lost without a word from the server`;

const HELP = `imgcache: the imgcache client. Each command is a session of its own: a new name, a new code, its own quota.

usage:
${Object.values(COMMANDS)
  .map((command) => `  imgcache ${command.synopsis.padEnd(22)} ${command.summary}`)
  .join('\n')}

${COMMON_OPTIONS}

${EXIT_HELP}`;

function commandHelp(name: string): string {
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command '${name}'`);
  return `usage: imgcache ${command.synopsis} [options]\n\n${command.about}\n\n${COMMON_OPTIONS}\n\n${EXIT_HELP}`;
}

interface CliOptions {
  host: string;
  port: number;
  /** [P-60] */
  credential: string | undefined;
  cacheDir: string;
  json: boolean;
  output: string | undefined;
  /** [P-46] usage filters */
  usageFilters: UsageFilters;
  /** [P-69] connect with TLS (undefined: plain TCP) */
  tls: ClientTlsOptions | undefined;
  /** [P-16] [P-75] requests get and refresh keep in flight (1: one at a time) */
  maxInFlight: number;
}

type Print = (line: string) => void;

/** Where a command's output goes: `out` the result only, `err` errors and diagnostics. */
interface Streams {
  out: Print;
  err: Print;
}

/** The command line's options, one table: parseArgs reads it, and new options are one line here. */
const CLI_OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  'cache-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  output: { type: 'string', short: 'o' },
  client: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  'key-file': { type: 'string' },
  'max-in-flight': { type: 'string' },
  key: { type: 'string' },
  tls: { type: 'boolean', default: false },
  'tls-ca': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'V', default: false },
} as const;

interface ParsedCommandLine {
  command: string | undefined;
  args: string[];
  options: CliOptions;
  help: boolean;
  version: boolean;
}

/** Bad use of the command line: exit status 2, one line and a pointer to the help. */
class UsageError extends Error {
  readonly code = 'bad-usage';
  /** the command whose help to point to, if known */
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

function parsePort(raw: string): number {
  // Digits only: '' is not 0 (a random port) and ' 80 ' or '0x50' are not 80.
  const port = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw new UsageError(`--port takes a port from 1 to 65535, not '${raw}'`);
  return port;
}

/** [P-16] A count of requests in flight, 1 to MAX_IN_FLIGHT. */
function parseMaxInFlight(raw: string): number {
  const count = /^[0-9]{1,2}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(count >= 1 && count <= MAX_IN_FLIGHT)) {
    throw new UsageError(`--max-in-flight takes a count from 1 to ${MAX_IN_FLIGHT}, not '${raw}'`);
  }
  return count;
}

/** The command line read; a usage error in it points to the help of the command it names, if any (docs/CLI.md). */
function parseCli(argv: string[]): ParsedCommandLine {
  try {
    return readCommandLine(argv);
  } catch (error) {
    const command = argv.find((word) => Object.hasOwn(COMMANDS, word));
    if (error instanceof UsageError && command !== undefined) throw new UsageError(error.message, command);
    throw error;
  }
}

function readCommandLine(argv: string[]): ParsedCommandLine {
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: CLI_OPTIONS });
  } catch (error) {
    // Node's parser explains at length ("To specify a positional argument starting with a '-' ..."): its first
    // sentence says what is wrong.
    const message = (error as Error).message.split(/\.\s/)[0] ?? String(error);
    throw new UsageError(message.replace(/^Unknown option/, 'unknown option'));
  }
  const values = parsed.values as {
    [K in keyof typeof CLI_OPTIONS]: (typeof CLI_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string | undefined;
  };
  const [command, ...args] = parsed.positionals;
  if (values.key !== undefined) throw new UsageError(KEY_ON_COMMAND_LINE);
  const rawPort = values.port ?? process.env.IMGCACHE_PORT;
  const rawInFlight = values['max-in-flight'] ?? process.env.IMGCACHE_MAX_IN_FLIGHT;
  return {
    command,
    args,
    help: values.help,
    version: values.version,
    options: {
      host: values.host ?? process.env.IMGCACHE_HOST ?? DEFAULT_HOST,
      port: rawPort === undefined ? DEFAULT_PORT : parsePort(rawPort),
      credential: orBadUsage(() => readClientKey(values['key-file'])),
      cacheDir: values['cache-dir'] ?? process.env.IMGCACHE_CLIENT_CACHE ?? DEFAULT_CACHE_DIR,
      json: values.json,
      output: values.output,
      usageFilters: {
        ...(values.client === undefined ? {} : { client: values.client }),
        ...(values.since === undefined ? {} : { since: values.since }),
        ...(values.until === undefined ? {} : { until: values.until }),
      },
      tls: orBadUsage(() => clientTlsOptions(values.tls, values['tls-ca'])),
      maxInFlight: rawInFlight === undefined ? MAX_IN_FLIGHT : parseMaxInFlight(rawInFlight),
    },
  };
}

/** An option's value read from a file or the environment ([P-60] the key, [P-69] the CA): what cannot be is bad usage. */
function orBadUsage<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** One image of `get --json`. */
type GetItem =
  | { name: string; status: 'downloaded' | 'not-modified'; path: string; bytes: number; sha256: string }
  | { name: string; status: 'failed'; error: { code: string; message: string } }
  | { name: string; status: 'skipped' };

function getItemOf(outcome: FetchOutcome): GetItem {
  const { entry } = outcome;
  return { name: entry.name, status: outcome.status, path: outcome.path, bytes: entry.bytes, sha256: entry.sha256 };
}

/**
 * `get a b c`: every image, as `cp` copies each file: one that fails (not on the server, a refusal that leaves the
 * session open) is reported and the others are still fetched; the status is that of the first failure. The requests
 * are pipelined ([P-16], [P-75]; `--max-in-flight`), the results reported in the order of the names. A failure that
 * ends the session (quota exhausted, connection lost) leaves the requests after it not carried out [P-55]: those are
 * reported as not fetched ("skipped").
 */
async function getImages(client: ImgcacheClient, names: string[], options: CliOptions, io: Streams): Promise<number> {
  if (names.length === 0) throw new UsageError('get needs an image name', 'get');
  const cache = await openCache(options);
  const settled = await cache.fetchMany(client, names, options.maxInFlight); // [P-34]: each sends the hash held
  const items: GetItem[] = [];
  const skipped: string[] = [];
  const undone = leftUndone(settled);
  let status: number = EXIT.ok;
  for (const [index, name] of names.entries()) {
    const result = settled[index] as FetchSettled;
    if (result.status === 'fulfilled') {
      items.push(getItemOf(result.value));
      if (!options.json) io.out(formatFetch(result.value));
    } else if (undone[index]) {
      skipped.push(name);
      items.push({ name, status: 'skipped' });
    } else {
      const failure = describeError(result.reason);
      if (status === EXIT.ok) status = failure.status;
      items.push({ name, status: 'failed', error: { code: failure.code, message: failure.message } });
      if (!options.json) io.err(`imgcache: ${name}: ${failure.text}`);
    }
  }
  if (skipped.length > 0 && !options.json) io.err(`imgcache: not fetched (the session ended): ${skipped.join(', ')}`);
  if (options.json) io.out(JSON.stringify({ images: items, quota: client.quota }));
  return status;
}

/**
 * Runs one command line of the shell or of the CLI against an open session; returns its exit status, or null after
 * `exit`. A failure of the whole command is thrown.
 */
async function runCommand(
  client: ImgcacheClient,
  words: string[],
  options: CliOptions,
  io: Streams,
): Promise<number | null> {
  const [command, ...args] = words;
  switch (command) {
    case 'list': {
      const result = await client.list();
      // Listing never creates the cache folder: with no folder, nothing is downloaded.
      const cache = existsSync(options.cacheDir) ? await openCache(options) : null;
      const stateOf = (image: ImageInfo): LocalState => cache?.stateOf(image) ?? 'absent';
      const marked = result.images.map((image) => ({ ...image, local: stateOf(image) }));
      io.out(options.json ? JSON.stringify({ ...result, images: marked }) : formatListWithMarks(result, stateOf));
      return EXIT.ok;
    }
    case 'get':
      return getImages(client, args, options, io);
    case 'refresh': {
      const cache = await openCache(options);
      const result = await refreshAll(cache, client, options.maxInFlight);
      const { items, quota } = result;
      io.out(options.json ? JSON.stringify({ images: items, quota }) : formatRefresh(items, quota, cache.folder));
      if (result.fatal) throw result.fatal;
      return EXIT.ok;
    }
    case 'usage': {
      const text = await client.usageText(options.usageFilters);
      if (options.output) {
        await writeFile(options.output, text);
        const bytes = Buffer.byteLength(text);
        io.out(
          options.json
            ? JSON.stringify({ output: options.output, bytes })
            : `usage written to ${options.output} (${formatBytes(bytes)})`,
        );
      } else io.out(options.json ? text : JSON.stringify(JSON.parse(text), null, 2));
      return EXIT.ok;
    }
    case 'exit':
      await client.exit();
      return null;
    case 'help':
      io.out('commands: list, get <image> [...], refresh, usage, exit, help');
      return EXIT.ok;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function openCache(options: CliOptions): Promise<LocalCache> {
  return LocalCache.open(options.cacheDir, `${options.host}:${options.port}`);
}

/**
 * The shell: one session, a command per line. It ends at `exit`, at the end of its input, or when the server ends
 * the session (a refusal that closes it, such as quota-exhausted; a closing NOTICE: revoked, idle, shutting down; the
 * connection lost): then at once, without reading further lines, and with the status of that end (docs/CLI.md).
 */
async function runShell(client: ImgcacheClient, options: CliOptions, io: Streams): Promise<number> {
  const interactive = Boolean(process.stdin.isTTY);
  const lines = createInterface({
    input: process.stdin,
    output: interactive ? process.stdout : undefined,
    terminal: interactive,
  });
  client.on('notice', (notice) => io.err(options.json ? JSON.stringify({ notice }) : `server: ${notice.message}`));
  // Ended by the server while waiting for a line: stop waiting (the lines already read are not run).
  client.on('close', () => lines.close());
  const prompt = () => interactive && lines.prompt();
  lines.setPrompt('imgcache> ');
  prompt();
  let status: number = EXIT.ok;
  /** whether the last command run failed because the session ended (its failure is reported already) */
  let endReported = false;
  let saidExit = false;
  for await (const line of lines) {
    if (client.endReason) break;
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) {
      prompt();
      continue;
    }
    let outcome: number | null;
    try {
      outcome = await runCommand(client, words, options, io);
    } catch (error) {
      if (error instanceof UsageError && !options.json) {
        io.err(`imgcache: ${error.message}; type help for the commands`);
        outcome = EXIT.usage;
      } else outcome = report(error, options, io);
    }
    if (outcome === null) {
      saidExit = true;
      break;
    }
    if (outcome !== EXIT.ok) status = outcome;
    if (client.endReason) {
      endReported = outcome !== EXIT.ok;
      break;
    }
    prompt();
  }
  lines.close();
  const ended = saidExit ? null : client.endReason;
  if (ended === null) {
    if (!client.closed) await goodbye(client);
    return status;
  }
  if (!client.closed) client.close();
  return endReported ? status : report(ended, options, io);
}

/** What went wrong, for people (`text`) and for scripts (`code`, `message`, the exit `status`). */
interface Failure {
  code: string;
  message: string;
  status: number;
  text: string;
  details?: Record<string, unknown>;
}

function describeError(error: unknown): Failure {
  if (error instanceof UsageError) {
    const help = error.command ? `imgcache help ${error.command}` : 'imgcache --help';
    return {
      code: error.code,
      message: error.message,
      status: EXIT.usage,
      text: `${error.message}\nrun '${help}' for usage`,
    };
  }
  if (error instanceof RejectedError) {
    const { reject } = error;
    return {
      code: reject.reason,
      message: reject.message,
      status: EXIT.rejected,
      text: formatReject(reject),
      details: { reject },
    };
  }
  if (error instanceof ServerError) {
    const closing = error.body.fatal ? ' (the server closed the connection)' : '';
    const { code, message } = error.body;
    return {
      code,
      message,
      status: EXIT.refused,
      text: `refused: ${message} [${code}]${closing}`,
      details: { fatal: error.body.fatal },
    };
  }
  const coded = error as { code?: unknown; message?: unknown };
  const message = typeof coded.message === 'string' ? coded.message : String(error);
  const code = typeof coded.code === 'string' ? coded.code : 'failed';
  if (error instanceof ConnectionClosedError && error.notice) {
    // The server ended the session and said why (revoked, idle-timeout, shutting-down): a refusal of what was asked.
    return { code: error.notice.kind, message, status: EXIT.refused, text: message };
  }
  if (error instanceof ConnectionClosedError || code === 'not-imgcache' || code.startsWith('tls-')) {
    return { code, message, status: EXIT.unreachable, text: message };
  }
  return { code, message, status: EXIT.failed, text: message };
}

/** Prints a failure on stderr (text, or one JSON line with --json) and returns the exit status it calls for. */
function report(error: unknown, options: Pick<CliOptions, 'json'>, io: Streams): number {
  const failure = describeError(error);
  if (options.json) {
    const { code, message, status, details } = failure;
    io.err(JSON.stringify({ error: { code, message, status, ...details } }));
  } else {
    io.err(`imgcache: ${failure.text}`);
  }
  return failure.status;
}

/**
 * [P-23] Says goodbye and waits for the server to close, within a bound. The command's work is done by then: a server
 * that closes first (shutting down, or gone) changes nothing to what was fetched, nor to the exit status.
 */
async function goodbye(client: ImgcacheClient): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, 2_000);
  });
  await Promise.race([client.exit().catch(() => undefined), bound]);
  clearTimeout(timer);
  if (!client.closed) client.close();
}

export async function main(
  argv: string[],
  out: Print = (line) => console.log(line),
  err: Print = (line) => console.error(line),
): Promise<number> {
  const io: Streams = { out, err };
  let parsed: ParsedCommandLine;
  try {
    parsed = parseCli(argv);
  } catch (error) {
    return report(error, { json: argv.includes('--json') }, io);
  }
  const { command, args, options } = parsed;
  if (parsed.version) {
    out(
      options.json ? JSON.stringify({ name: 'imgcache', version: packageVersion() }) : `imgcache ${packageVersion()}`,
    );
    return EXIT.ok;
  }
  if (command === 'help' || parsed.help) {
    const topic = command === 'help' ? args[0] : command;
    try {
      out(topic === undefined ? HELP : commandHelp(topic));
      return EXIT.ok;
    } catch (error) {
      return report(error, options, io);
    }
  }
  if (command === 'dashboard' || command === undefined) {
    // No command on a terminal starts the dashboard; with no terminal it prints the help, status 2, as it always did.
    const { dashboardCommand, hasTerminal } = await import('./dashboard/run-dashboard.ts');
    if (command === undefined && !hasTerminal()) {
      err(HELP);
      return EXIT.usage;
    }
    return dashboardCommand(options, err);
  }
  if (!['list', 'get', 'refresh', 'usage', 'shell'].includes(command)) {
    return report(new UsageError(`unknown command '${command}'`), options, io);
  }
  if (command === 'get' && args.length === 0)
    return report(new UsageError('get needs an image name', 'get'), options, io);
  let client: ImgcacheClient;
  try {
    client = await ImgcacheClient.connect({
      host: options.host,
      port: options.port,
      clientName: `imgcache-cli/${packageVersion()}`,
      ...(options.credential === undefined ? {} : { credential: options.credential }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
    });
  } catch (error) {
    return report(error, options, io);
  }
  if (command === 'shell') return runShell(client, options, io);
  // A closing NOTICE (shutdown, idle) says why the session ends: a diagnostic, on stderr.
  client.on('notice', (notice) => {
    if (notice.closing) io.err(options.json ? JSON.stringify({ notice }) : `imgcache: server: ${notice.message}`);
  });
  let status: number;
  try {
    status = (await runCommand(client, [command, ...args], options, io)) ?? EXIT.ok;
  } catch (error) {
    status = report(error, options, io);
  }
  if (!client.closed) await goodbye(client);
  return status;
}
