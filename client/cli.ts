/**
 * `imgcache`: the scriptable client. One command per run (`list`, `get`, `refresh`, `usage`), or `shell` to type the seed
 * report's commands at a prompt or pipe them in. Exit status says what happened (see EXIT below), so scripts can
 * branch on it.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ConnectionClosedError, type ImageInfo, RejectedError, ServerError } from '../src/protocol/index.ts';
import { formatFetch, formatListWithMarks, formatRefresh } from './cache-report.ts';
import { KEY_ON_COMMAND_LINE, readClientKey } from './client-key.ts';
import { DEFAULT_CACHE_DIR } from './download.ts';
import { formatBytes, formatReject } from './format.ts';
import { DEFAULT_HOST, DEFAULT_PORT, ImgcacheClient, type UsageFilters } from './imgcache-client.ts';
import { LocalCache, type LocalState } from './local-cache.ts';
import { refreshAll } from './refresh.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, rejected: 3, refused: 4, unreachable: 5 } as const;

const HELP = `imgcache: the imgcache client

usage:
  imgcache [dashboard]            the full-screen dashboard (on a terminal; without one, no command prints this)
  imgcache list                   the server's images, each marked not downloaded / current / changed on the
                                  server, and who you are (name, code, tier, quota)
  imgcache get <image> [...]      download images into the cache folder (one session for all of them); an image
                                  already held is only revalidated by its hash: "not modified", free of quota
  imgcache refresh                revalidate every downloaded image at once; download those that changed
  imgcache usage [--output F]     every client's history as JSON (platinum tier only; with a key, your own sessions'
                                  at any tier); --client NAME, --since T and --until T (ISO-8601) ask for one
                                  session, or the sessions admitted in a time range
  imgcache shell                  type commands (list, get <image>, refresh, usage, exit, help) at a prompt, or pipe them in

options:
  --host H         server address (default ${DEFAULT_HOST}; env IMGCACHE_HOST)
  --port P         server port (default ${DEFAULT_PORT}; env IMGCACHE_PORT)
  --cache-dir D    where downloads go (default ./${DEFAULT_CACHE_DIR}; env IMGCACHE_CLIENT_CACHE)
  --key-file F     the client's key, for a server that admits registered clients (env IMGCACHE_KEY_FILE, or the
                   key itself in IMGCACHE_KEY; never on the command line, where ps shows it)
  --json           print answers as JSON
  -h, --help       this text

exit status: 0 done, 1 failed, 2 bad usage, 3 rejected by the server (full, or version),
             4 a request was refused (quota exhausted, not found, not allowed), 5 server unreachable`;

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
}

type Print = (line: string) => void;

function parseCli(argv: string[]): { command: string | undefined; args: string[]; options: CliOptions; help: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'cache-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
      output: { type: 'string', short: 'o' },
      client: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      'key-file': { type: 'string' },
      key: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.key !== undefined) throw new UsageError(KEY_ON_COMMAND_LINE);
  let credential: string | undefined;
  try {
    credential = readClientKey(values['key-file']);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const port = Number(values.port ?? process.env.IMGCACHE_PORT ?? DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`bad port '${values.port}'`);
  const [command, ...args] = positionals;
  return {
    command,
    args,
    help: values.help ?? false,
    options: {
      host: values.host ?? process.env.IMGCACHE_HOST ?? DEFAULT_HOST,
      port,
      credential,
      cacheDir: values['cache-dir'] ?? process.env.IMGCACHE_CLIENT_CACHE ?? DEFAULT_CACHE_DIR,
      json: values.json ?? false,
      output: values.output,
      usageFilters: {
        ...(values.client === undefined ? {} : { client: values.client }),
        ...(values.since === undefined ? {} : { since: values.since }),
        ...(values.until === undefined ? {} : { until: values.until }),
      },
    },
  };
}

class UsageError extends Error {}

/** Runs one command line of the shell or of the CLI against an open session; returns false after `exit`. */
async function runCommand(
  client: ImgcacheClient,
  words: string[],
  options: CliOptions,
  print: Print,
): Promise<boolean> {
  const [command, ...args] = words;
  switch (command) {
    case 'list': {
      const result = await client.list();
      // Listing never creates the cache folder: with no folder, nothing is downloaded.
      const cache = existsSync(options.cacheDir) ? await openCache(options) : null;
      const stateOf = (image: ImageInfo): LocalState => cache?.stateOf(image) ?? 'absent';
      const marked = result.images.map((image) => ({ ...image, local: stateOf(image) }));
      const text = formatListWithMarks(result, stateOf);
      print(options.json ? JSON.stringify({ ...result, images: marked }) : text);
      return true;
    }
    case 'get': {
      if (args.length === 0) throw new UsageError('get needs an image name');
      const cache = await openCache(options);
      for (const image of args) {
        const outcome = await cache.fetch(client, image); // [P-34]: sends the hash held, if any
        print(options.json ? JSON.stringify(outcome) : formatFetch(outcome));
      }
      return true;
    }
    case 'refresh': {
      const cache = await openCache(options);
      const result = await refreshAll(cache, client);
      const { items, quota } = result;
      print(options.json ? JSON.stringify({ images: items, quota }) : formatRefresh(items, quota, cache.folder));
      if (result.fatal) throw result.fatal;
      return true;
    }
    case 'usage': {
      const text = await client.usageText(options.usageFilters);
      if (options.output) {
        await writeFile(options.output, text);
        print(`usage written to ${options.output} (${formatBytes(Buffer.byteLength(text))})`);
      } else print(options.json ? text : JSON.stringify(JSON.parse(text), null, 2));
      return true;
    }
    case 'exit':
      await client.exit();
      return false;
    case 'help':
      print('commands: list, get <image> [...], refresh, usage, exit, help');
      return true;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function openCache(options: CliOptions): Promise<LocalCache> {
  return LocalCache.open(options.cacheDir, `${options.host}:${options.port}`);
}

async function runShell(client: ImgcacheClient, options: CliOptions, print: Print): Promise<number> {
  const interactive = Boolean(process.stdin.isTTY);
  const lines = createInterface({
    input: process.stdin,
    output: interactive ? process.stdout : undefined,
    terminal: interactive,
  });
  client.on('notice', (notice) => print(`server: ${notice.message}`));
  const prompt = () => interactive && lines.prompt();
  lines.setPrompt('imgcache> ');
  prompt();
  let status: number = EXIT.ok;
  for await (const line of lines) {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) {
      prompt();
      continue;
    }
    try {
      if (!(await runCommand(client, words, options, print))) break;
    } catch (error) {
      status = report(error, print);
      if (client.closed) break;
    }
    prompt();
  }
  lines.close();
  if (!client.closed) await client.exit().catch(() => client.close());
  return status;
}

function report(error: unknown, print: Print): number {
  if (error instanceof UsageError) {
    print(`error: ${error.message}`);
    return EXIT.usage;
  }
  if (error instanceof RejectedError) {
    print(formatReject(error.reject));
    return EXIT.rejected;
  }
  if (error instanceof ServerError) {
    const closing = error.body.fatal ? ' (the server closed the connection)' : '';
    print(`refused: ${error.body.message} [${error.body.code}]${closing}`);
    return EXIT.refused;
  }
  if (error instanceof ConnectionClosedError) {
    print(`error: ${error.message}`);
    return EXIT.unreachable;
  }
  print(`error: ${error instanceof Error ? error.message : String(error)}`);
  return EXIT.failed;
}

export async function main(argv: string[], print: Print = (line) => console.log(line)): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (error) {
    print(`error: ${(error as Error).message}\n\n${HELP}`);
    return EXIT.usage;
  }
  const { command, args, options } = parsed;
  if (parsed.help || command === 'help') {
    print(HELP);
    return EXIT.ok;
  }
  if (command === 'dashboard' || command === undefined) {
    // No command on a terminal starts the dashboard; with no terminal it prints the help, status 2, as it always did.
    const { dashboardCommand, hasTerminal } = await import('./dashboard/run-dashboard.ts');
    if (command === undefined && !hasTerminal()) {
      print(HELP);
      return EXIT.usage;
    }
    return dashboardCommand(options, print);
  }
  if (!['list', 'get', 'refresh', 'usage', 'shell'].includes(command)) {
    print(`error: unknown command '${command}'\n\n${HELP}`);
    return EXIT.usage;
  }
  let client: ImgcacheClient;
  try {
    client = await ImgcacheClient.connect({
      host: options.host,
      port: options.port,
      clientName: 'imgcache-cli/0.1.0',
      ...(options.credential === undefined ? {} : { credential: options.credential }),
    });
  } catch (error) {
    return report(error, print);
  }
  if (command === 'shell') return runShell(client, options, print);
  try {
    await runCommand(client, [command, ...args], options, print);
    await client.exit();
    return EXIT.ok;
  } catch (error) {
    const status = report(error, print);
    // Say goodbye when the session is still open (a refusal that was not fatal); just drop it otherwise.
    if (!client.closed) await client.exit().catch(() => client.close());
    return status;
  }
}
