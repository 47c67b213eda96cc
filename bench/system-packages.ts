/**
 * The bench's system tools (nginx, wrk, curl, and perf for the CPU profile) installed from Debian's packages when
 * missing (`apt-get update` once, then `apt-get install -y`). Needs root, as installing packages does.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A command and the Debian package that has it, when their names differ (perf is in linux-perf). */
export interface CommandPackage {
  command: string;
  package: string;
}

/** Installs the packages whose command is missing; returns the packages it installed. */
export function ensureCommands(wanted: ReadonlyArray<string | CommandPackage>, log: (line: string) => void): string[] {
  const missing = wanted
    .map((entry) => (typeof entry === 'string' ? { command: entry, package: entry } : entry))
    .filter((entry) => !hasCommand(entry.command))
    .map((entry) => entry.package);
  if (missing.length === 0) return [];
  log(`installing ${missing.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
  return missing;
}

/** The first line a command prints about its version (on stdout or stderr, whatever its status), or null. */
export function commandVersion(command: string, args: readonly string[]): string | null {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  if (result.error) return null;
  // nginx -v prints on stderr; wrk -v prints on stdout and exits with 1
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0]?.trim() || null;
}
