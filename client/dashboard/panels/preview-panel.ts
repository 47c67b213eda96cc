/**
 * The selected image: drawn in half-block cells when a copy is saved locally, with its details (size, pixels,
 * hash, where it was saved). An image that is not downloaded yet shows what the server says about it instead.
 */
import path from 'node:path';
import type blessed from 'blessed';
import { formatBytes } from '../../format.ts';
import { type ColourMode, fitCells, halfBlockLines } from '../half-block-art.ts';
import type { DecodedImage } from '../png-decoder.ts';
import { cellWidth, longDateTime, type Segment, styledLine, truncateLeft, visibleLength, wrap } from '../text.ts';
import type { ImageRow, ViewState } from '../view-state.types.ts';
import { closedForIdleness, selectedRow } from '../view-state-steps.ts';
import { borderedPanelBox, innerSize, outerWidth, type Panel, panelLabel } from './panel.ts';

const STATE_WORDS: Record<ImageRow['local'], Segment> = {
  absent: ['not downloaded', 'gray-fg'],
  current: ['current', 'green-fg'],
  stale: ['changed on the server', 'yellow-fg'],
};

/**
 * The lines of details under the picture: size, pixels and state (the state on a line of its own when the three do
 * not fit whole), the hash, and where the copy is saved (or when the image changed on the server).
 */
export function previewDetails(view: ViewState, row: ImageRow, columns: number): string[] {
  const image = view.preview?.name === row.name ? view.preview.image : null;
  const pixels = image ? ` · ${image.width}x${image.height}` : '';
  const saved = row.saved;
  const size = `${formatBytes(saved?.bytes ?? row.bytes)}${pixels}`;
  const state = STATE_WORDS[row.local];
  const whole: Segment[] = [[`${size} · `], state];
  const first =
    visibleLength(whole) <= columns
      ? [styledLine(whole, columns)]
      : [styledLine([[size]], columns), styledLine([state], columns)];
  const hash = styledLine([['sha256 ', 'gray-fg'], [saved?.sha256 ?? row.sha256]], columns);
  // The path's end (the file's name) matters most: the word "saved" gives way to it before it is cut.
  const label: Segment = ['saved ', 'gray-fg'];
  // Without its seconds before it is cut.
  const modified = [`modified ${longDateTime(row.modified)}`, `modified ${longDateTime(row.modified).slice(0, 16)}`];
  const where = !saved
    ? styledLine([[modified.find((text) => cellWidth(text) <= columns) ?? modified[1] ?? '', 'gray-fg']], columns)
    : visibleLength([label, [saved.path]]) <= columns ||
        cellWidth(truncateLeft(saved.path, columns - 6)) >= cellWidth(path.basename(saved.path)) + 1
      ? styledLine([label, [truncateLeft(saved.path, Math.max(1, columns - 6))]], columns)
      : styledLine([[truncateLeft(saved.path, columns)]], columns);
  return [...first, hash, where];
}

/** Lines `lineColumns` wide, centred in `columns` x `rows`: each line padded to exactly `columns` cells. */
function centred(lines: string[], lineColumns: number, columns: number, rows: number): string[] {
  const width = Math.min(lineColumns, columns);
  const leftColumns = Math.max(0, Math.floor((columns - width) / 2));
  const left = ' '.repeat(leftColumns);
  const right = ' '.repeat(Math.max(0, columns - width - leftColumns));
  const top = Math.max(0, Math.floor((rows - lines.length) / 2));
  return [...Array.from({ length: top }, () => ' '.repeat(columns)), ...lines.map((line) => left + line + right)];
}

/** The picture area: the half-block drawing, or a sentence saying why there is none. */
function pictureLines(view: ViewState, row: ImageRow, columns: number, rows: number, draw: Draw): string[] {
  const say = (text: string, style = 'gray-fg') => {
    const lines = wrap(text, columns, 0).slice(0, Math.max(1, rows));
    const width = Math.min(columns, Math.max(...lines.map(cellWidth)));
    return centred(
      lines.map((line) => styledLine([[line, style]], width)),
      width,
      columns,
      rows,
    );
  };
  if (row.download) return say('downloading…', 'cyan-fg');
  if (!row.saved) {
    // [P-27] closed for idleness, Enter still gets it (in a new session)
    if (view.connection.kind === 'connected' || closedForIdleness(view))
      return say('not downloaded yet: Enter gets it');
    return say(view.connection.kind === 'closed' ? 'not downloaded · the session is over' : 'not downloaded yet');
  }
  const preview = view.preview;
  if (!preview || preview.name !== row.name || preview.status === 'loading') return say('loading the preview…');
  if (preview.status === 'failed' || !preview.image) return say(preview.error ?? 'no preview', 'yellow-fg');
  const picture = draw(preview.image, columns, rows);
  return centred(picture, fitCells(preview.image, columns, rows).cols, columns, rows);
}

type Draw = (image: DecodedImage, columns: number, rows: number) => string[];

/** The panel's lines: picture on top, details at the bottom. */
export function previewLines(view: ViewState, columns: number, rows: number, draw: Draw = halfBlockLines): string[] {
  const row = selectedRow(view);
  if (!row) return [styledLine([['no image selected', 'gray-fg']], columns)];
  const details = previewDetails(view, row, columns);
  const pictureRows = Math.max(0, rows - details.length);
  const picture = pictureLines(view, row, columns, pictureRows, draw).slice(0, pictureRows);
  while (picture.length < pictureRows) picture.push(' '.repeat(columns));
  return [...picture, ...details];
}

/** Drawing a large image is the costliest part of a frame: keep the last drawing while image and size stay. */
function memoisedDraw(mode: ColourMode): Draw {
  let last: { image: DecodedImage; columns: number; rows: number; lines: string[] } | null = null;
  return (image, columns, rows) => {
    if (last?.image !== image || last.columns !== columns || last.rows !== rows) {
      last = { image, columns, rows, lines: halfBlockLines(image, columns, rows, mode) };
    }
    return last.lines;
  };
}

/**
 * Cells to write to the terminal past blessed, which holds 256 colours only: the truecolor picture, where blessed
 * drew its 256-colour one. `key` changes whenever blessed may have drawn over them.
 */
export interface Overlay {
  key: string;
  /** screen column and row of the first cell (0-based) */
  left: number;
  top: number;
  lines: string[];
}

export interface PreviewPanel extends Panel {
  /** the truecolor picture to write over blessed's drawing, when the terminal takes truecolor and one is shown */
  overlay(view: ViewState): Overlay | null;
}

let images = 0;
const imageIds = new WeakMap<DecodedImage, number>();

export function createPreviewPanel(screen: blessed.Widgets.Screen, mode: ColourMode = '256'): PreviewPanel {
  const element = borderedPanelBox(screen, 'preview', 'blue');
  // blessed holds 256 colours: it always gets the dithered drawing, and truecolor goes over it (see overlay).
  const draw = memoisedDraw('256');
  const drawTrue = memoisedDraw('truecolor');
  return {
    element,
    show(view) {
      const { columns, rows } = innerSize(element);
      const row = selectedRow(view);
      // A long name is cut to the border: never spilled into the picture.
      element.setLabel(panelLabel(row ? row.name : 'preview', outerWidth(element)));
      element.setContent(previewLines(view, columns, rows, draw).join('\n'));
    },
    overlay(view) {
      if (mode !== 'truecolor' || view.main !== 'images' || view.focus === 'help') return null;
      const row = selectedRow(view);
      const preview = view.preview;
      if (!row?.saved || row.download || preview?.name !== row.name || !preview.image) return null;
      const { columns, rows } = innerSize(element);
      const pictureRows = Math.max(0, rows - previewDetails(view, row, columns).length);
      const size = fitCells(preview.image, columns, pictureRows);
      if (size.cols === 0) return null;
      let id = imageIds.get(preview.image);
      if (id === undefined) {
        id = ++images;
        imageIds.set(preview.image, id);
      }
      const left = (element.aleft as number) + 1 + Math.floor((columns - size.cols) / 2);
      const top = (element.atop as number) + 1 + Math.max(0, Math.floor((pictureRows - size.rows) / 2));
      return {
        key: `${id}@${left},${top},${size.cols}x${size.rows}`,
        left,
        top,
        lines: drawTrue(preview.image, columns, pictureRows),
      };
    },
  };
}
