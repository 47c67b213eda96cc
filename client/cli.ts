/**
 * `imgcache`: the scriptable client. One command per run (`list`, `get`, `usage`), or `shell` to type the seed
 * report's commands at a prompt or pipe them in. Exit status says what happened (see EXIT below), so scripts can
 * branch on it.
 */
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ConnectionClosedError, RejectedError, ServerError } from '../src/protocol/index.ts';
import { DEFAULT_CACHE_DIR, downloadImage } from './download.ts';
import { formatBytes, formatList, formatReject } from './format.ts';
import { DEFAULT_HOST, DEFAULT_PORT, ImgcacheClient } from './imgcache-client.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, rejected: 3, refused: 4, unreachable: 5 } as const;

const HELP = `imgcache: the imgcache client

usage:
  imgcache list                   the server's images, and who you are (name, code, tier, quota)
  imgcache get <image> [...]      download images into the cache folder (one session for all of them)
  imgcache usage [--output F]     every client's history as JSON (platinum tier only)
  imgcache shell                  type commands (list, get <image>, usage, exit, help) at a prompt, or pipe them in

options:
  --host H         server address (default ${DEFAULT_HOST}; env IMGCACHE_HOST)
  --port P         server port (default ${DEFAULT_PORT}; env IMGCACHE_PORT)
  --cache-dir D    where downloads go (default ./${DEFAULT_CACHE_DIR}; env IMGCACHE_CLIENT_CACHE)
  --json           print answers as JSON
  -h, --help       this text

exit status: 0 done, 1 failed, 2 bad usage, 3 rejected by the server (full, or version),
             4 a request was refused (quota exhausted, not found, not allowed), 5 server unreachable`;

interface CliOptions {
  host: string;
  port: number;
  cacheDir: string;
  json: boolean;
  output: string | undefined;
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
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
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
      cacheDir: values['cache-dir'] ?? process.env.IMGCACHE_CLIENT_CACHE ?? DEFAULT_CACHE_DIR,
      json: values.json ?? false,
      output: values.output,
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
      print(options.json ? JSON.stringify(result) : formatList(result));
      return true;
    }
    case 'get': {
      if (args.length === 0) throw new UsageError('get needs an image name');
      for (const image of args) {
        const saved = await downloadImage(client, image, options.cacheDir);
        print(
          options.json
            ? JSON.stringify(saved)
            : `saved ${saved.image} (${formatBytes(saved.bytes)}, sha256 ${saved.sha256.slice(0, 12)}…) to ${saved.path}; ${saved.quota.remaining} of ${saved.quota.limit} requests left`,
        );
      }
      return true;
    }
    case 'usage': {
      const text = await client.usageText();
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
      print('commands: list, get <image> [...], usage, exit, help');
      return true;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
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
  if (parsed.help || command === undefined || command === 'help') {
    print(HELP);
    return command === undefined && !parsed.help ? EXIT.usage : EXIT.ok;
  }
  if (!['list', 'get', 'usage', 'shell'].includes(command)) {
    print(`error: unknown command '${command}'\n\n${HELP}`);
    return EXIT.usage;
  }
  let client: ImgcacheClient;
  try {
    client = await ImgcacheClient.connect({ host: options.host, port: options.port, clientName: 'imgcache-cli/0.1.0' });
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
