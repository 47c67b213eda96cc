/**
 * The server's images as a table: name, size, last modified, and the local state of each (not downloaded, current,
 * changed on the server, or a progress bar while it downloads). The selected row is highlighted and kept in view.
 */
import blessed from 'blessed';
import { formatBytes } from '../../format.ts';
import { bar, fit, type Segment, shortDateTime, styledLine } from '../text.ts';
import type { ImageRow, ViewState } from '../view-state.types.ts';
import { innerSize, type Panel } from './panel.ts';

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

/** The table's tagged lines for a panel of `columns` x `rows` (header row included). */
export function imageTableLines(view: ViewState, columns: number, rows: number): string[] {
  const nameColumns = Math.max(8, columns - SIZE_COLUMNS - MODIFIED_COLUMNS - STATE_COLUMNS - 4);
  const header = ` ${fit('name', nameColumns)} ${fit('size', SIZE_COLUMNS, true)} ${fit('modified', MODIFIED_COLUMNS)} ${fit('local', STATE_COLUMNS)}`;
  const lines = [styledLine([[header, 'bold,underline']], columns)];
  if (!view.imagesLoaded) {
    lines.push(styledLine([[view.connection.kind === 'connected' ? 'listing…' : 'no list yet', 'gray-fg']], columns));
    return lines;
  }
  if (view.images.length === 0) lines.push(styledLine([['the server has no images', 'gray-fg']], columns));
  const visible = Math.max(1, rows - 1);
  const first = Math.max(0, Math.min(view.selected - visible + 1, view.images.length - visible));
  for (const [offset, row] of view.images.slice(first, first + visible).entries()) {
    const selected = first + offset === view.selected;
    const [stateText, stateStyle] = localStateCell(row);
    // A marker as well as the highlight, so the selection shows on any terminal (and in a text capture).
    const text = `${selected ? '›' : ' '}${fit(row.name, nameColumns)} ${fit(formatBytes(row.bytes), SIZE_COLUMNS, true)} ${fit(shortDateTime(row.modified), MODIFIED_COLUMNS)} `;
    const cursor = view.focus === 'images' ? 'inverse' : 'bold';
    lines.push(
      selected
        ? styledLine([[`${text}${fit(stateText, STATE_COLUMNS)}`, cursor]], columns)
        : styledLine([[text], [fit(stateText, STATE_COLUMNS), stateStyle]], columns),
    );
  }
  return lines;
}

export function createImageTablePanel(screen: blessed.Widgets.Screen): Panel {
  const element = blessed.box({
    parent: screen,
    tags: true,
    border: { type: 'line' },
    label: ' images ',
    style: { border: { fg: 'blue' } },
  });
  return {
    element,
    show(view) {
      const { columns, rows } = innerSize(element);
      const count = view.imagesLoaded ? ` (${view.images.length})` : '';
      element.setLabel(` images${count} `);
      element.setContent(imageTableLines(view, columns, rows).join('\n'));
    },
  };
}
