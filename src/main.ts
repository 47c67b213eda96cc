/**
 * `imgcache-server`: runs the server (the default), or prints the usage history from the history (an SQLite file or
 * a PostgreSQL database) without the protocol (`imgcache-server history`). Every option has a flag and an
 * environment variable; see --help.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { usageChunksOf } from '../db/history-backend.ts';
import { CLIENTS_HELP, ClientsCommandError, runClientsCommandOn } from './clients-command.ts';
import {
  ConfigError,
  describeOptions,
  OPTION_SPECS,
  PACKAGE_ROOT,
  resolveConfig,
  type ServerConfig,
} from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { isImageFileName } from './server/image-catalog.ts';
import { startServer } from './server/server.ts';
import { applyServerV8Settings } from './v8-settings.ts';

const HELP = `imgcache-server: hands out the images of a folder to clients under tiered quotas, with an event history

usage:
  imgcache-server [serve] [options]     run the server (Ctrl-C or SIGTERM stops it cleanly)
  imgcache-server history [--history FILE|URL]
                                        print every client's history (the usage JSON) from the history
${CLIENTS_HELP}

options (each also read from the environment variable named below it):
${describeOptions()}
  -h, --help               this text
  -V, --version            the version`;

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}

function parseCommandLine(argv: string[]) {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
    tier: { type: 'string' },
    json: { type: 'boolean' },
  };
  for (const spec of OPTION_SPECS) options[spec.flag] = { type: 'string' };
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true });
  const flags: Record<string, string | undefined> = {};
  for (const spec of OPTION_SPECS) flags[spec.flag] = values[spec.flag] as string | undefined;
  return {
    command: positionals[0] ?? 'serve',
    flags,
    help: values.help === true,
    version: values.version === true,
    extra: positionals.slice(1),
    tier: values.tier as string | undefined,
    json: values.json === true,
  };
}

async function printHistory(history: string): Promise<void> {
  // `imgcache-server history | head` closes our stdout early: that is the reader's choice, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  for await (const piece of usageChunksOf(history)) {
    if (!process.stdout.write(piece)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
  process.stdout.write('\n');
}

/** The folder of images must be one: a path to nothing, or to a file, is a mistake of the operator, said at once. */
function checkCacheDir(cacheDir: string): void {
  let isFolder: boolean;
  try {
    isFolder = statSync(cacheDir).isDirectory();
  } catch (error) {
    throw new ConfigError(
      `--cache-dir ${cacheDir}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (error as Error).message}`,
    );
  }
  if (!isFolder) throw new ConfigError(`--cache-dir ${cacheDir}: not a folder`);
}

/** Files of the folder that are not images (by their extension; hidden ones aside) are not served: said once at start, as is an empty catalog. */
function warnAboutCatalog(config: ServerConfig, images: number, logger: Logger): void {
  let others: string[];
  try {
    others = readdirSync(config.cacheDir, { withFileTypes: true })
      .filter((entry) => !entry.isDirectory() && !entry.name.startsWith('.') && !isImageFileName(entry.name))
      .map((entry) => entry.name);
  } catch {
    others = []; // the catalog's watcher says what became of the folder
  }
  if (others.length > 0) {
    logger.warn(
      { cacheDir: config.cacheDir, count: others.length, files: others.slice(0, 5) },
      'cache folder: files that are not images (by extension) are not served',
    );
  }
  if (images === 0)
    logger.warn(
      { cacheDir: config.cacheDir },
      'no images to serve: the catalog is empty until images are added to the folder',
    );
}

async function serve(flags: Record<string, string | undefined>): Promise<void> {
  const config = resolveConfig(flags, process.env);
  checkCacheDir(config.cacheDir);
  const logger = createLogger(config.logLevel, config.logFormat);
  applyServerV8Settings();
  // A history deleted or replaced under the server (or its lock): the server has stopped itself, the command fails.
  const server = await startServer(config, { logger, onHistoryLost: () => process.exit(1) });
  warnAboutCatalog(config, server.catalog.size, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: telling clients, recording every close');
    server.close().then(
      () => process.exit(server.lost ? 1 : 0), // a signal during the stop of a lost history: still a failure
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The server did not start (bad options, a history it cannot open or write, a port in use): said as such. */
class StartupError extends Error {
  constructor(cause: unknown) {
    super(`cannot start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    // Node's parser explains at length: its first sentence says what is wrong.
    const message = ((error as Error).message.split(/\.\s/)[0] ?? '').replace(/^Unknown option/, 'unknown option');
    console.error(`imgcache-server: ${message} [bad-usage]\nrun 'imgcache-server --help' for usage`);
    return 2;
  }
  if (parsed.version) {
    console.log(`imgcache-server ${packageVersion()}`);
    return 0;
  }
  if (parsed.help) {
    console.log(HELP);
    return 0;
  }
  try {
    if (parsed.command === 'serve') {
      try {
        await serve(parsed.flags);
      } catch (error) {
        throw new StartupError(error);
      }
      return 0;
    }
    if (parsed.command === 'history') {
      await printHistory(resolveConfig(parsed.flags, process.env).database);
      return 0;
    }
    if (parsed.command === 'clients') {
      const config = resolveConfig(parsed.flags, process.env);
      await runClientsCommandOn(
        parsed.extra,
        { ...(parsed.tier === undefined ? {} : { tier: parsed.tier }), json: parsed.json },
        config,
        { out: (text) => console.log(text), err: (text) => console.error(text) },
      );
      return 0;
    }
    console.error(
      `imgcache-server: unknown command '${parsed.command}' [bad-usage]\nrun 'imgcache-server --help' for usage`,
    );
    return 2;
  } catch (error) {
    const cause = error instanceof StartupError ? error.cause : error;
    const code =
      cause instanceof ConfigError || (cause instanceof ClientsCommandError && cause.code === 'bad-usage') ? 2 : 1;
    const detail = (cause as { code?: string }).code ? ` [${(cause as { code?: string }).code}]` : '';
    console.error(`imgcache-server: ${(error as Error).message}${detail}`);
    return code;
  }
}

const status = await main(process.argv.slice(2));
if (status !== 0) process.exit(status);
