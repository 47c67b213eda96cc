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

/** The longest file name the file systems we serve from allow, in bytes of UTF-8 (Linux NAME_MAX). */
const MAX_FILE_NAME_BYTES = 255;

/**
 * The label of a name the catalog does not hold, or null when it looks like an honest miss. The length comes first:
 * a name longer than any file name can be is `too-long` whatever else it holds (`../` repeated, NUL bytes, ...).
 */
export function suspiciousName(name: string, catalogNames: Iterable<string>): SuspiciousName | null {
  if (Buffer.byteLength(name, 'utf8') > MAX_FILE_NAME_BYTES) return 'too-long';
  if (name.includes('\0')) return 'nul-byte';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this looks for
  if (/[\x01-\x1f\x7f]/.test(name)) return 'control-character';
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(name)) return 'absolute-path';
  if (/(^|[\\/])\.\.($|[\\/])/.test(name)) return 'path-traversal';
  if (/[\\/]/.test(name)) return 'path-separator';
  if (/%(2e|2f|5c|00)/i.test(name)) return 'encoded-path';
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

/**
 * [P-52] A name cut for the record: 256 characters are code points (as [P-8] counts them), never UTF-16 units, so a
 * cut never splits a surrogate pair and the usage document holds no lone surrogate; `imageLength` counts the same way.
 */
export function recordedName(name: string): { image: string; imageLength?: number } {
  if (name.length <= RECORDED_NAME_MAX_CHARS) return { image: name };
  const points = Array.from(name);
  if (points.length <= RECORDED_NAME_MAX_CHARS) return { image: name };
  return { image: points.slice(0, RECORDED_NAME_MAX_CHARS).join(''), imageLength: points.length };
}

/** [P-52] A command cut for the record, by code points as a name is: the same cut as [recordedName]. */
export function recordedCommand(command: string): string {
  return recordedName(command).image;
}

/** [P-38] Why a file with an image's name is not catalogued all the same (the operator's log says which, once). */
export type UncataloguedName = 'control-character' | 'bidi-control' | 'not-utf8' | 'path-separator' | 'encoded-path';

/**
 * [P-38] Names the catalog never holds, even for a regular file with an image's extension: names with control
 * characters (U+0000-U+001F, U+007F-U+009F) or bidirectional controls, which cannot be shown as they are; names that
 * were not valid UTF-8 on disk (they read back with U+FFFD, and a client could not ask for them); names with a
 * backslash or a percent-encoded `.`, `/`, `\` or NUL, which a client could take for a path when it saves the image.
 * Null when the name may be catalogued.
 */
export function uncataloguedName(name: string): UncataloguedName | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this looks for
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'control-character';
  if (/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(name)) return 'bidi-control';
  if (name.includes('\ufffd')) return 'not-utf8';
  if (name.includes('\\')) return 'path-separator';
  if (/%(2e|2f|5c|00)/i.test(name)) return 'encoded-path';
  return null;
}

/**
 * [P-18] [P-38] Catalog order: by Unicode code points, which is the order of the names' UTF-8 bytes (JavaScript's
 * `<` compares UTF-16 units, which puts U+10000 and above before U+E000-U+FFFF). No locale, no normalization.
 */
export function compareImageNames(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index);
    const y = b.charCodeAt(index);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** A UTF-16 unit moved so that surrogates (U+D800-U+DFFF, the halves of code points over U+FFFF) come last. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}
