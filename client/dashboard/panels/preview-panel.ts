/**
 * The selected image: drawn in half-block cells when a copy is saved locally, with its details (size, pixels,
 * hash, where it was saved). An image that is not downloaded yet shows what the server says about it instead.
 */
import blessed from 'blessed';
import { formatBytes } from '../../format.ts';
import { fitCells, halfBlockLines } from '../half-block-art.ts';
import type { DecodedImage } from '../png-decoder.ts';
import { longDateTime, type Segment, styledLine, truncateLeft } from '../text.ts';
import type { ImageRow, ViewState } from '../view-state.types.ts';
import { innerSize, type Panel } from './panel.ts';

const DETAIL_ROWS = 3;

const STATE_WORDS: Record<ImageRow['local'], Segment> = {
  absent: ['not downloaded', 'gray-fg'],
  current: ['current', 'green-fg'],
  stale: ['changed on the server', 'yellow-fg'],
};

/** The three lines of details under the picture. */
export function previewDetails(view: ViewState, row: ImageRow, columns: number): string[] {
  const image = view.preview?.name === row.name ? view.preview.image : null;
  const pixels = image ? ` · ${image.width}x${image.height}` : '';
  const saved = row.saved;
  const first = styledLine(
    [[`${formatBytes(saved?.bytes ?? row.bytes)}${pixels} · `], STATE_WORDS[row.local]],
    columns,
  );
  const hash = styledLine([['sha256 ', 'gray-fg'], [saved?.sha256 ?? row.sha256]], columns);
  const where = saved
    ? styledLine([['saved ', 'gray-fg'], [truncateLeft(saved.path, Math.max(1, columns - 6))]], columns)
    : styledLine([[`modified ${longDateTime(row.modified)}`, 'gray-fg']], columns);
  return [first, hash, where];
}

function centred(lines: string[], lineColumns: number, columns: number, rows: number): string[] {
  const left = ' '.repeat(Math.max(0, Math.floor((columns - lineColumns) / 2)));
  const top = Math.max(0, Math.floor((rows - lines.length) / 2));
  return [...Array.from({ length: top }, () => ''), ...lines.map((line) => left + line)];
}

/** The picture area: the half-block drawing, or a sentence saying why there is none. */
function pictureLines(view: ViewState, row: ImageRow, columns: number, rows: number, draw: Draw): string[] {
  const say = (text: string, style = 'gray-fg') =>
    centred([styledLine([[text, style]], columns)], Math.min(columns, text.length), columns, rows);
  if (row.download) return say('downloading…', 'cyan-fg');
  if (!row.saved) return say('not downloaded yet: Enter gets it');
  const preview = view.preview;
  if (!preview || preview.name !== row.name || preview.status === 'loading') return say('loading the preview…');
  if (preview.status === 'failed' || !preview.image)
    return say(`no preview: ${preview.error ?? 'unknown error'}`, 'yellow-fg');
  const picture = draw(preview.image, columns, rows);
  return centred(picture, fitCells(preview.image, columns, rows).cols, columns, rows);
}

type Draw = (image: DecodedImage, columns: number, rows: number) => string[];

/** The panel's lines: picture on top, details at the bottom. */
export function previewLines(view: ViewState, columns: number, rows: number, draw: Draw = halfBlockLines): string[] {
  const row = view.images[view.selected];
  if (!row) return [styledLine([['no image selected', 'gray-fg']], columns)];
  const pictureRows = Math.max(0, rows - DETAIL_ROWS);
  const picture = pictureLines(view, row, columns, pictureRows, draw).slice(0, pictureRows);
  while (picture.length < pictureRows) picture.push('');
  return [...picture, ...previewDetails(view, row, columns)];
}

/** Drawing a large image is the costliest part of a frame: keep the last drawing while image and size stay. */
function memoisedDraw(): Draw {
  let last: { image: DecodedImage; columns: number; rows: number; lines: string[] } | null = null;
  return (image, columns, rows) => {
    if (last?.image !== image || last.columns !== columns || last.rows !== rows) {
      last = { image, columns, rows, lines: halfBlockLines(image, columns, rows) };
    }
    return last.lines;
  };
}

export function createPreviewPanel(screen: blessed.Widgets.Screen): Panel {
  const element = blessed.box({
    parent: screen,
    tags: true,
    border: { type: 'line' },
    label: ' preview ',
    style: { border: { fg: 'blue' } },
  });
  const draw = memoisedDraw();
  return {
    element,
    show(view) {
      const { columns, rows } = innerSize(element);
      const row = view.images[view.selected];
      element.setLabel(row ? ` ${row.name} ` : ' preview ');
      element.setContent(previewLines(view, columns, rows, draw).join('\n'));
    },
  };
}
