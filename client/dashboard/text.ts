/**
 * Small pure text helpers shared by the panels: fitting text into terminal columns, times, gauges.
 *
 * Every panel's line goes through `styledLine` (or `fit`), which measures in terminal cells (a CJK character or an
 * emoji takes two, a combining mark none), never in UTF-16 code units, and returns a line exactly as wide as asked.
 * The panels are created with wrapping off (panel.ts), so blessed never breaks a line a second time: a line as wide
 * as its panel stays one row, however many style tags it carries.
 */

/** Characters drawn two cells wide: the ranges blessed treats as wide, plus everything outside the BMP (emoji). */
const WIDE =
  /[\u1100-\u115f\u2329\u232a\u2e80-\u303e\u3040-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe10-\ufe19\ufe30-\ufe6f\uff00-\uff60\uffe0-\uffe6]|[\u{10000}-\u{10ffff}]/u;
/** Characters drawn in no cell of their own: combining marks, zero-width joiners and controls. */
const ZERO = /[\p{Mn}\p{Me}\u200b-\u200f\u2060\ufeff\p{Cc}]/u;

/** How many terminal cells one character (one code point) takes. */
export function charCells(char: string): number {
  if (ZERO.test(char)) return 0;
  return WIDE.test(char) ? 2 : 1;
}

/** How many terminal cells `text` takes. */
export function cellWidth(text: string): number {
  let cells = 0;
  for (const char of text) cells += charCells(char);
  return cells;
}

/** The longest start of `text` that fits `cells` cells. */
function headCells(text: string, cells: number): string {
  let out = '';
  let used = 0;
  for (const char of text) {
    const width = charCells(char);
    if (used + width > cells) break;
    out += char;
    used += width;
  }
  return out;
}

/** `text` cut to `width` cells, with '…' marking the cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  if (cellWidth(text) <= width) return text;
  return `${headCells(text, width - 1)}…`;
}

/** `text` cut from the left to `width` cells, keeping its end (for paths: the file name stays visible). */
export function truncateLeft(text: string, width: number): string {
  if (width <= 0) return '';
  if (cellWidth(text) <= width) return text;
  const reversed = headCells([...text].reverse().join(''), width - 1);
  return `…${[...reversed].reverse().join('')}`;
}

/** `text` in exactly `width` cells: cut, or padded on the right (or on the left with `alignRight`). */
export function fit(text: string, width: number, alignRight = false): string {
  const cut = truncate(text, width);
  const pad = ' '.repeat(Math.max(0, width - cellWidth(cut)));
  return alignRight ? pad + cut : cut + pad;
}

function two(value: number): string {
  return String(value).padStart(2, '0');
}

/** HH:MM:SS of a time in ms, in the local time zone. */
export function clockTime(ms: number): string {
  const date = new Date(ms);
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** 'MM-DD HH:MM' of an ISO time, in the local time zone; the text itself when it is not a time. */
export function shortDateTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

/** 'YYYY-MM-DD HH:MM:SS' of an ISO time, in the local time zone. */
export function longDateTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${clockTime(date.getTime())}`;
}

/**
 * The first row a scrolled list shows so that `cursor` is in view, moving as little as it can from `first` (the
 * first row shown before): the cursor walks up to the top of the view before the view scrolls, as in htop.
 */
export function scrollWindow(first: number, cursor: number, visible: number, total: number): number {
  const room = Math.max(1, visible);
  let top = Math.max(0, Math.min(first, total - room));
  if (cursor < top) top = cursor;
  if (cursor >= top + room) top = cursor - room + 1;
  return Math.max(0, top);
}

/** A bar of `width` cells, `fraction` of them full: '█████░░░░░'. */
export function bar(fraction: number, width: number): string {
  const clamped = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(clamped * width);
  return '█'.repeat(full) + '░'.repeat(Math.max(0, width - full));
}

/** Text made safe for a blessed element with `tags: true`: braces are shown, not read as tags. */
export function escapeTags(text: string): string {
  return text.replace(/[{}]/g, (brace) => (brace === '{' ? '{open}' : '{close}'));
}

/** A piece of a line: plain text and the blessed tags it is shown with ('bold', 'green-fg', 'bold,red-fg'). */
export type Segment = readonly [text: string, style?: string];

/**
 * Joins styled pieces into one tagged line of exactly `width` cells: the piece that crosses the edge is cut with '…',
 * the rest are dropped, and a short line is padded with spaces (unstyled) to the edge. This is the one way a panel's
 * line is made: lines exactly as wide as the panel, never wider, whatever their tags.
 */
export function styledLine(segments: readonly Segment[], width: number): string {
  let out = '';
  let left = Math.max(0, width);
  for (const [text, style] of segments) {
    if (left <= 0) break;
    const shown = truncate(text, left);
    left -= cellWidth(shown);
    const escaped = escapeTags(shown);
    out += style && shown ? `{${style}}${escaped}{/}` : escaped;
  }
  return out + ' '.repeat(left);
}

/** `text` broken into lines of at most `width` cells, at spaces where it can, continuation lines indented. */
export function wrap(text: string, width: number, indent = 2): string[] {
  if (width <= indent + 1) return [truncate(text, width)];
  const lines: string[] = [];
  let rest = text;
  let room = width;
  while (cellWidth(rest) > room) {
    const head = headCells(rest, room);
    let cut = head.lastIndexOf(' ');
    if (cut <= head.length / 2) cut = head.length;
    if (head.length === 0) cut = String.fromCodePoint(rest.codePointAt(0) ?? 32).length;
    lines.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
    room = width - indent;
  }
  lines.push(rest);
  return lines.map((line, index) => (index === 0 ? line : ' '.repeat(indent) + line));
}

/** How many cells the segments take unstyled. */
export function visibleLength(segments: readonly Segment[]): number {
  return segments.reduce((sum, [text]) => sum + cellWidth(text), 0);
}
