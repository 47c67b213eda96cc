/**
 * What an image name that is not in the catalog was trying to do. Names are only ever looked up as keys of the
 * catalog (never joined to a path), so none of these can reach a file; this only labels the attempt for the history
 * so that an operator can see probing for what it is.
 */

/** Longest name kept in a history event; a longer one is cut (its full length is recorded beside it). */
export const RECORDED_NAME_MAX_CHARS = 256;

export type SuspiciousName =
  | 'nul-byte'
  | 'control-character'
  | 'absolute-path'
  | 'path-traversal'
  | 'path-separator'
  | 'encoded-path'
  | 'too-long'
  | 'unicode-lookalike';

const MAX_PLAIN_NAME_CHARS = 255;

export function suspiciousName(name: string, catalogNames: Iterable<string>): SuspiciousName | null {
  if (name.includes('\0')) return 'nul-byte';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this looks for
  if (/[\x01-\x1f\x7f]/.test(name)) return 'control-character';
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(name)) return 'absolute-path';
  if (/(^|[\\/])\.\.($|[\\/])/.test(name)) return 'path-traversal';
  if (/[\\/]/.test(name)) return 'path-separator';
  if (/%(2e|2f|5c|00)/i.test(name)) return 'encoded-path';
  if (name.length > MAX_PLAIN_NAME_CHARS) return 'too-long';
  if (isLookalike(name, catalogNames)) return 'unicode-lookalike';
  return null;
}

/** A name with non-ASCII characters that equals a catalog name everywhere but at those characters. */
function isLookalike(name: string, catalogNames: Iterable<string>): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a plain ASCII range check
  if (/^[\x00-\x7f]*$/.test(name)) return false;
  const folded = name.normalize('NFKC');
  for (const known of catalogNames) {
    if (folded === known) return true;
    if (known.length !== name.length) continue;
    let differsOnlyAtNonAscii = true;
    for (let index = 0; index < name.length && differsOnlyAtNonAscii; index++) {
      const ours = name.charCodeAt(index);
      if (ours !== known.charCodeAt(index) && ours < 0x80) differsOnlyAtNonAscii = false;
    }
    if (differsOnlyAtNonAscii) return true;
  }
  return false;
}

export function recordedName(name: string): { image: string; imageLength?: number } {
  if (name.length <= RECORDED_NAME_MAX_CHARS) return { image: name };
  return { image: name.slice(0, RECORDED_NAME_MAX_CHARS), imageLength: name.length };
}
