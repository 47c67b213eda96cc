/**
 * wrk, the reference HTTP load generator (Debian package), used to calibrate ours: against the same nginx, at the
 * same concurrency, ours must reach at least 90% of wrk's requests per second.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface WrkResult {
  command: string;
  requestsPerSecond: number;
  /** wrk's summary lines, for the record */
  summary: string;
  /** requests/s of every round, when the best of several is kept */
  rounds?: number[];
}

export async function runWrk(url: string, connections: number, threads: number, seconds: number): Promise<WrkResult> {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, url];
  const { stdout } = await run('wrk', args, { timeout: (seconds + 30) * 1000 });
  const match = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!match) throw new Error(`cannot read wrk's output:\n${stdout}`);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: .*/.exec(stdout);
  if (errors) throw new Error(`wrk saw errors: ${errors[0]}`);
  return { command: `wrk ${args.join(' ')}`, requestsPerSecond: Number(match[1]), summary: stdout.trim() };
}
