/**
 * The usage view (platinum): every client's history [P-32] as a table of client, tier, image, time and outcome,
 * optionally filtered to one client, scrolled with the arrows.
 */
import type blessed from 'blessed';
import { cellWidth, fit, longDateTime, scrollWindow, styledLine } from '../text.ts';
import { usageRows } from '../usage-table.ts';
import type { ViewState } from '../view-state.types.ts';
import { borderedPanelBox, innerSize, type Panel } from './panel.ts';

const CLIENT_COLUMNS = 12;
const TIER_COLUMNS = 9;
const TIME_COLUMNS = 19;
/** the longest request outcome, whole: not-modified (a closed session's reason may widen the column) */
const OUTCOME_COLUMNS = 12;
/** the image column keeps this much when the outcome column widens */
const MIN_IMAGE_COLUMNS = 12;

const OUTCOME_STYLES: Record<string, string> = {
  served: 'green-fg',
  refused: 'red-fg',
  'not-found': 'yellow-fg',
  'not-modified': 'cyan-fg',
  incomplete: 'yellow-fg',
};

export function usageTitle(view: ViewState): string {
  const filter = view.usage.filter === null ? 'every client' : `client ${view.usage.filter} only`;
  return ` usage: ${filter} `;
}

/** The usage table's lines; `first` is the first row shown before (the view moves as little as it can from it). */
export function usageLines(view: ViewState, columns: number, rows: number, first = 0): string[] {
  return usageWindow(view, columns, rows, first).lines;
}

export function usageWindow(
  view: ViewState,
  columns: number,
  rows: number,
  previous = 0,
): { lines: string[]; first: number } {
  const document = view.usage.document;
  const all = document ? usageRows(document, view.usage.filter) : [];
  const fixed = CLIENT_COLUMNS + TIER_COLUMNS + TIME_COLUMNS + 4;
  // Wide enough for every outcome shown ("closed: idle-timeout"), as long as the image column keeps its least.
  const longest = all.reduce((widest, row) => Math.max(widest, cellWidth(row.outcome)), OUTCOME_COLUMNS);
  const outcomeColumns = Math.max(OUTCOME_COLUMNS, Math.min(longest, columns - fixed - MIN_IMAGE_COLUMNS));
  const imageColumns = Math.max(8, columns - fixed - outcomeColumns);
  const header = ` ${fit('client', CLIENT_COLUMNS - 1)} ${fit('tier', TIER_COLUMNS)} ${fit('image', imageColumns)} ${fit('time', TIME_COLUMNS)} ${fit('outcome', outcomeColumns)}`;
  const lines = [styledLine([[header, 'bold,underline']], columns)];
  if (!document) {
    const text = view.usage.loading ? 'reading the usage history…' : 'no usage read yet';
    return { lines: [...lines, styledLine([[text, 'gray-fg']], columns)], first: 0 };
  }
  const visible = Math.max(1, rows - 2);
  // `scroll` is the cursor's row: the window moves only when the cursor would leave it (as in the image table).
  const cursor = Math.min(view.usage.scroll, Math.max(0, all.length - 1));
  const first = scrollWindow(previous, cursor, visible, all.length);
  for (const [offset, row] of all.slice(first, first + visible).entries()) {
    const image = row.image ?? '(no image requests)';
    const mark = first + offset === cursor ? '›' : ' ';
    const text = `${mark}${fit(row.client, CLIENT_COLUMNS - 1)} ${fit(row.tier, TIER_COLUMNS)} ${fit(image, imageColumns)} ${fit(longDateTime(row.at), TIME_COLUMNS)} `;
    const outcome = fit(row.outcome, outcomeColumns);
    lines.push(
      first + offset === cursor
        ? styledLine([[text + outcome, 'inverse']], columns)
        : styledLine([[text], [outcome, OUTCOME_STYLES[row.outcome] ?? 'gray-fg']], columns),
    );
  }
  while (lines.length < rows - 1) lines.push(' '.repeat(columns));
  const shown =
    all.length === 0 ? 'no rows' : `rows ${first + 1}-${Math.min(all.length, first + visible)} of ${all.length}`;
  const footer = `${shown} · ${document.clients.length} clients · ${document.rejected.length} rejected · generated ${longDateTime(document.generatedAt)}`;
  lines.push(styledLine([[footer, 'gray-fg']], columns));
  return { lines, first };
}

export function createUsagePanel(screen: blessed.Widgets.Screen): Panel {
  const element = borderedPanelBox(screen, 'usage', 'magenta', { hidden: true });
  let first = 0;
  return {
    element,
    show(view) {
      const { columns, rows } = innerSize(element);
      element.setLabel(usageTitle(view));
      const shown = usageWindow(view, columns, rows, first);
      first = shown.first;
      element.setContent(shown.lines.join('\n'));
    },
  };
}
