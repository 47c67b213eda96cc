/**
 * The dashboard as a command: runs it on the process's terminal. A dashboard needs a terminal on both sides;
 * without one it says so (scripts use `imgcache list|get|usage|shell`).
 */

import type { ClientTlsOptions } from '../tls-connect.ts';
import { runDashboard } from './dashboard.ts';
import { colourModeOf } from './half-block-art.ts';

export interface DashboardCommandOptions {
  host: string;
  port: number;
  cacheDir: string;
  /** [P-60] the client's key (from --key-file or IMGCACHE_KEY), if any */
  credential?: string | undefined;
  /** [P-69] connect with TLS (from --tls / --tls-ca, or their environment variables); undefined: plain TCP */
  tls?: ClientTlsOptions | undefined;
}

/** Exit status 2 when there is no terminal, as for any other bad use of the command. */
export const NO_TERMINAL_STATUS = 2;

export function hasTerminal(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY);
}

export async function dashboardCommand(
  options: DashboardCommandOptions,
  print: (line: string) => void,
): Promise<number> {
  if (!hasTerminal()) {
    print('error: the dashboard needs a terminal; in scripts use imgcache list, get, usage or shell');
    return NO_TERMINAL_STATUS;
  }
  const result = await runDashboard({
    input: process.stdin,
    output: process.stdout,
    host: options.host,
    port: options.port,
    cacheFolder: options.cacheDir,
    ...(options.credential === undefined ? {} : { credential: options.credential }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    colourMode: colourModeOf(process.env),
  });
  return result.status;
}
