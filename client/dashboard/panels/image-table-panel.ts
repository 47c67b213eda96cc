/**
 * The server's images as a table: name, size, last modified, and the local state of each (not downloaded, current,
 * changed on the server, or a progress bar while it downloads). The selected row is highlighted and kept in view.
 */
import type blessed from 'blessed';
import { formatBytes } from '../../format.ts';
import { bar, cellWidth, fit, type Segment, scrollWindow, shortDateTime, styledLine } from '../text.ts';
import type { ImageRow, ViewState } from '../view-state.types.ts';
import { visibleImages } from '../view-state-steps.ts';
import { borderedPanelBox, innerSize, outerWidth, type Panel, panelLabel } from './panel.ts';

const SIZE_COLUMNS = 9;
const MODIFIED_COLUMNS = 11;
const STATE_COLUMNS = 10;
const PROGRESS_CELLS = 5;

/** The local-state cell: words, or a progress bar and a percentage while downloading. */
export function localStateCell(row: ImageRow): Segment {
  if (row.download) {
    const { received, total } = row.download;
    const fraction = total > 0 ? received / total : 0;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    return [`${bar(fraction, PROGRESS_CELLS)} ${percent}`, 'cyan-fg'];
  }
  switch (row.local) {
    case 'absent':
      return ['not saved', 'gray-fg'];
    case 'current':
      return ['current', 'green-fg'];
    case 'stale':
      return ['changed', 'yellow-fg'];
  }
}

/** The table's columns for `columns` cells: the modified time gives way first, so names that fit are shown whole. */
export function tableColumns(view: ViewState, columns: number): { name: number; modified: number } {
  const longest = Math.max(4, ...view.images.map((row) => cellWidth(row.name)));
  const withModified = columns - SIZE_COLUMNS - MODIFIED_COLUMNS - STATE_COLUMNS - 4;
  if (withModified >= longest) return { name: withModified, modified: MODIFIED_COLUMNS };
  return { name: Math.max(8, columns - SIZE_COLUMNS - STATE_COLUMNS - 3), modified: 0 };
}

/** The row (among the images shown) that the table's line `line` (0: the header) shows, for a click. */
export function rowAtLine(view: ViewState, first: number, line: number): number | null {
  const index = first + line - 1;
  return line >= 1 && index < visibleImages(view).length ? index : null;
}

/**
 * The table's tagged lines for a panel of `columns` x `rows` (header row included), each exactly `columns` wide;
 * `previous` is the first row shown before, from which the view moves as little as it can.
 */
export function imageTableLines(view: ViewState, columns: number, rows: number, previous = 0): string[] {
  return imageTableWindow(view, columns, rows, previous).lines;
}

export function imageTableWindow(
  view: ViewState,
  columns: number,
  rows: number,
  previous = 0,
): { lines: string[]; first: number } {
  const widths = tableColumns(view, columns);
  const modified = (text: string) => (widths.modified > 0 ? ` ${fit(text, widths.modified)}` : '');
  const header = ` ${fit('name', widths.name)} ${fit('size', SIZE_COLUMNS, true)}${modified('modified')} ${fit('local', STATE_COLUMNS)}`;
  const lines = [styledLine([[header, 'bold,underline']], columns)];
  if (!view.imagesLoaded) {
    lines.push(styledLine([[view.connection.kind === 'connected' ? 'listing…' : 'no list yet', 'gray-fg']], columns));
    return { lines, first: 0 };
  }
  const shown = visibleImages(view);
  if (view.images.length === 0) lines.push(styledLine([['the server has no images', 'gray-fg']], columns));
  else if (shown.length === 0) lines.push(styledLine([[`no name contains "${view.search}"`, 'gray-fg']], columns));
  const visible = Math.max(1, rows - 1);
  const first = scrollWindow(previous, view.selected, visible, shown.length);
  for (const [offset, row] of shown.slice(first, first + visible).entries()) {
    const selected = first + offset === view.selected;
    const [stateText, stateStyle] = localStateCell(row);
    // A marker as well as the highlight, so the selection shows on any terminal (and in a text capture).
    const text = `${selected ? '›' : ' '}${fit(row.name, widths.name)} ${fit(formatBytes(row.bytes), SIZE_COLUMNS, true)}${modified(shortDateTime(row.modified))} `;
    const cursor = view.focus === 'images' || view.focus === 'search' ? 'inverse' : 'bold';
    lines.push(
      selected
        ? styledLine([[`${text}${fit(stateText, STATE_COLUMNS)}`, cursor]], columns)
        : styledLine([[text], [fit(stateText, STATE_COLUMNS), stateStyle]], columns),
    );
  }
  return { lines, first };
}

/** The table's border title: how many images, how many the search shows, and the order. */
export function imageTableTitle(view: ViewState): string {
  if (!view.imagesLoaded) return 'images';
  const shown = visibleImages(view).length;
  const count = view.search ? `${shown} of ${view.images.length}, "${view.search}"` : String(view.images.length);
  return `images (${count})${view.sort === 'name' ? '' : ` by ${view.sort}`}`;
}

export interface ImageTablePanel extends Panel {
  /** the row (among the images shown) at the panel's inner line `line` (0: the header), as last drawn */
  rowAt(view: ViewState, line: number): number | null;
}

export function createImageTablePanel(screen: blessed.Widgets.Screen): ImageTablePanel {
  const element = borderedPanelBox(screen, 'images', 'blue');
  let first = 0;
  return {
    element,
    rowAt: (view, line) => rowAtLine(view, first, line),
    show(view) {
      const { columns, rows } = innerSize(element);
      element.setLabel(panelLabel(imageTableTitle(view), outerWidth(element)));
      const shown = imageTableWindow(view, columns, rows, first);
      first = shown.first;
      element.setContent(shown.lines.join('\n'));
    },
  };
}
