/**
 * [P-61] Client keys: `imgc_<key id>_<secret>`, the key id 16 lowercase hex digits (8 random bytes, not secret: it
 * names the key in the history), the secret 43 base64url characters (32 random bytes, 256 bits). The prefix lets
 * secret scanners find a leaked key; the key id lets the server find the one registered key to compare with.
 *
 * Only the SHA-256 of the secret is stored. A slow KDF (scrypt, argon2) protects low-entropy passwords from a stolen
 * table; a 256-bit random secret cannot be brute-forced from its hash, so one SHA-256 is enough (GitHub's tokens are
 * stored the same way), and checking a key costs microseconds, not the tens of milliseconds a KDF would make every
 * HELLO (and every guesser) cost the server.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_PREFIX = 'imgc_';
const KEY_FORM = /^imgc_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface ClientKey {
  keyId: string;
  secret: string;
}

/** A new key: its text (shown once to the operator), its id, and the hash to store. */
export function newClientKey(): { key: string; keyId: string; keyHash: string } {
  const keyId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { key: `${KEY_PREFIX}${keyId}_${secret}`, keyId, keyHash: hashSecret(secret) };
}

/** The key's parts, or null when the text does not have the form of a key. */
export function parseClientKey(text: unknown): ClientKey | null {
  if (typeof text !== 'string') return null;
  const match = KEY_FORM.exec(text);
  if (!match) return null;
  return { keyId: match[1] as string, secret: match[2] as string };
}

/** The stored form of a secret: its SHA-256, lowercase hex. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A hash nothing matches, compared against when a key id is unknown: every check costs the same. */
const NO_HASH = Buffer.alloc(32);

/**
 * Whether `secret` hashes to `keyHash` (hex), in constant time: the comparison looks at all 32 bytes whatever they
 * hold, so the time it takes tells a guesser nothing. With no hash (an unknown key id) it compares against a hash
 * nothing matches, at the same cost.
 */
export function secretMatches(secret: string, keyHash: string | undefined): boolean {
  const actual = createHash('sha256').update(secret, 'utf8').digest();
  const expected = keyHash === undefined ? undefined : Buffer.from(keyHash, 'hex');
  const comparable = expected !== undefined && expected.length === actual.length;
  const same = timingSafeEqual(comparable ? expected : NO_HASH, actual);
  return comparable && same;
}
