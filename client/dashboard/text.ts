/** Small pure text helpers shared by the panels: fitting text into columns, times, gauges. */

/** `text` cut to `width` characters, with '…' marking the cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

/** `text` cut from the left to `width` characters, keeping its end (for paths: the file name stays visible). */
export function truncateLeft(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `…${text.slice(text.length - width + 1)}`;
}

/** `text` in exactly `width` columns: cut, or padded on the right (or on the left with `alignRight`). */
export function fit(text: string, width: number, alignRight = false): string {
  const cut = truncate(text, width);
  return alignRight ? cut.padStart(width) : cut.padEnd(width);
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
 * Joins styled pieces into one tagged line of at most `width` visible characters: the piece that crosses the edge is
 * cut with '…' and the rest are dropped.
 */
export function styledLine(segments: readonly Segment[], width: number): string {
  let out = '';
  let left = width;
  for (const [text, style] of segments) {
    if (left <= 0) break;
    const shown = text.length > left ? truncate(text, left) : text;
    left -= shown.length;
    const escaped = escapeTags(shown);
    out += style ? `{${style}}${escaped}{/}` : escaped;
  }
  return out;
}

/** `text` broken into lines of at most `width` characters, at spaces where it can, continuation lines indented. */
export function wrap(text: string, width: number, indent = 2): string[] {
  if (width <= indent + 1) return [truncate(text, width)];
  const lines: string[] = [];
  let rest = text;
  let room = width;
  while (rest.length > room) {
    let cut = rest.lastIndexOf(' ', room);
    if (cut <= room / 2) cut = room;
    lines.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
    room = width - indent;
  }
  lines.push(rest);
  return lines.map((line, index) => (index === 0 ? line : ' '.repeat(indent) + line));
}

/** How many columns the segments take unstyled. */
export function visibleLength(segments: readonly Segment[]): number {
  return segments.reduce((sum, [text]) => sum + text.length, 0);
}
