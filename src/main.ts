/**
 * `imgcache-server`: runs the server (the default), or prints the usage history from the SQLite file without the
 * protocol (`imgcache-server history`). Every option has a flag and an environment variable; see --help.
 */
import { parseArgs } from 'node:util';
import { CLIENTS_HELP, ClientsCommandError, runClientsCommand } from './clients-command.ts';
import { ConfigError, describeOptions, OPTION_SPECS, resolveConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { startServer, usageFromFile } from './server/server.ts';

const HELP = `imgcache-server: hands out the images of a folder to clients under tiered quotas, with an event history

usage:
  imgcache-server [serve] [options]     run the server (Ctrl-C or SIGTERM stops it cleanly)
  imgcache-server history [--database F]
                                        print every client's history (the usage JSON) from the history file
${CLIENTS_HELP}

options (each also read from the environment variable named below it):
${describeOptions()}
  -h, --help                 this text`;

function parseCommandLine(argv: string[]) {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
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
    extra: positionals.slice(1),
    tier: values.tier as string | undefined,
    json: values.json === true,
  };
}

async function printHistory(database: string): Promise<void> {
  for (const piece of usageFromFile(database)) {
    if (!process.stdout.write(piece)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
  process.stdout.write('\n');
}

async function serve(flags: Record<string, string | undefined>): Promise<void> {
  const config = resolveConfig(flags, process.env);
  const logger = createLogger(config.logLevel, config.logFormat);
  const server = await startServer(config, { logger });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: telling clients, recording every close');
    server.close().then(
      () => process.exit(0),
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
    console.error(`imgcache-server: ${(error as Error).message}\n\n${HELP}`);
    return 2;
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
      runClientsCommand(
        parsed.extra,
        { ...(parsed.tier === undefined ? {} : { tier: parsed.tier }), json: parsed.json },
        config,
        { out: (text) => console.log(text), err: (text) => console.error(text) },
      );
      return 0;
    }
    console.error(`imgcache-server: unknown command '${parsed.command}'\n\n${HELP}`);
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
