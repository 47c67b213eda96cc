/**
 * [P-60] Where the CLI and the dashboard find the client's key: a file named by `--key-file` (or IMGCACHE_KEY_FILE),
 * or the environment variable IMGCACHE_KEY. Never the command line alone: `ps` shows every process's arguments to
 * every user of the machine.
 */
import { readFileSync } from 'node:fs';
import { parseClientKey } from '../src/identity/client-key.ts';

export class KeySourceError extends Error {}

/** The key, or undefined when none is given (an anonymous session). */
export function readClientKey(
  keyFile: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const file = keyFile ?? env.IMGCACHE_KEY_FILE;
  if (file !== undefined && file !== '') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new KeySourceError(`cannot read the key file ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    const key = text.trim();
    if (key === '') throw new KeySourceError(`the key file ${file} is empty`);
    return checkedKey(key, `the key file ${file}`);
  }
  const key = env.IMGCACHE_KEY?.trim();
  return key === undefined || key === '' ? undefined : checkedKey(key, 'IMGCACHE_KEY');
}

/**
 * [P-61] Only what has the form of a key is sent: a file named by mistake (another secret, a key with more after it)
 * must not cross the network, in clear where there is no TLS. What it holds is not repeated in the error.
 */
function checkedKey(key: string, source: string): string {
  if (parseClientKey(key)) return key;
  throw new KeySourceError(
    `${source} does not hold an imgcache key (imgc_, 16 hexadecimal digits, _, 43 characters): nothing was sent`,
  );
}

/** Told to whoever tries `--key` on the command line. */
export const KEY_ON_COMMAND_LINE =
  'a key is not taken on the command line, where any user can read it (ps): give --key-file FILE or IMGCACHE_KEY';
