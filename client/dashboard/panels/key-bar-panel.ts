/**
 * The bottom bar: the keys that work right now (they change with the focus and the state of the session), from the
 * one table of bindings. Each item knows the columns it covers, so a click on it presses its key.
 */
import { type BarItem, keyBarItems } from '../key-bindings.ts';
import { cellWidth, type Segment, styledLine } from '../text.ts';
import type { ViewState } from '../view-state.types.ts';
import { linePanel, type Panel } from './panel.ts';

export interface KeyBarHit {
  /** first column of the item, and the column after it */
  from: number;
  to: number;
  /** the blessed key name a click presses */
  key: string;
}

/**
 * The bar's tagged line for `columns`, and where each item is. When the items do not fit, the optional ones go
 * first, then items from the end but the last (quit stays).
 */
export function keyBarLayout(view: ViewState, columns: number): { line: string; hits: KeyBarHit[] } {
  // Wide terminals get padded key caps; narrow ones the compact form, so that 80 columns hold the keys that matter.
  const padded = columns >= 100;
  const shape = (item: BarItem) => {
    const cap = padded ? ` ${item.label} ` : item.label;
    const what = padded ? ` ${item.description}  ` : ` ${item.description} `;
    return { item, cap, what, width: cellWidth(cap) + cellWidth(what) };
  };
  let items = keyBarItems(view).map(shape);
  const total = () => 1 + items.reduce((sum, shaped) => sum + shaped.width, 0) - 1;
  while (total() > columns && items.some((shaped) => shaped.item.optional)) {
    const last = items.findLastIndex((shaped) => shaped.item.optional);
    items = items.filter((_, index) => index !== last);
  }
  while (total() > columns && items.length > 1) items.splice(items.length - 2, 1);
  const segments: Segment[] = [[' ']];
  const hits: KeyBarHit[] = [];
  let at = 1;
  for (const { item, cap, what, width } of items) {
    segments.push([cap, 'inverse'], [what]);
    hits.push({ from: at, to: at + width - 1, key: item.key });
    at += width;
  }
  return { line: styledLine(segments, columns), hits };
}

export function keyBarLine(view: ViewState, columns: number): string {
  return keyBarLayout(view, columns).line;
}

/** The key a click at `column` of the bar presses, if any. */
export function keyAt(view: ViewState, columns: number, column: number): string | null {
  return keyBarLayout(view, columns).hits.find((hit) => column >= hit.from && column < hit.to)?.key ?? null;
}

export function createKeyBarPanel(screen: Parameters<typeof linePanel>[0]): Panel {
  return linePanel(screen, keyBarLine);
}
