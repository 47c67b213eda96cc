/**
 * Draws a decoded image in terminal cells: each cell shows two pixels, the upper half block '▀' in the colour of
 * the upper pixel over a background of the lower one, so a cell (about twice as tall as wide) holds two square
 * pixels. Colours are the nearest of the xterm 256-colour palette, written as SGR sequences that blessed parses.
 * Pure: image and size in, lines out.
 */
import type { DecodedImage } from './png-decoder.ts';

export const UPPER_HALF_BLOCK = '▀';
const CUBE_LEVELS = [0, 95, 135, 175, 215, 255];

function nearestCubeIndex(value: number): number {
  let best = 0;
  for (let i = 1; i < CUBE_LEVELS.length; i++) {
    if (Math.abs((CUBE_LEVELS[i] ?? 0) - value) < Math.abs((CUBE_LEVELS[best] ?? 0) - value)) best = i;
  }
  return best;
}

function distance(r1: number, g1: number, b1: number, r2: number, g2: number, b2: number): number {
  return (r1 - r2) ** 2 + (g1 - g2) ** 2 + (b1 - b2) ** 2;
}

/** The xterm 256-colour index nearest to an RGB colour: the 6x6x6 cube (16-231) or the grey ramp (232-255). */
export function xterm256(r: number, g: number, b: number): number {
  const ri = nearestCubeIndex(r);
  const gi = nearestCubeIndex(g);
  const bi = nearestCubeIndex(b);
  const cube = 16 + 36 * ri + 6 * gi + bi;
  const cubeDistance = distance(r, g, b, CUBE_LEVELS[ri] ?? 0, CUBE_LEVELS[gi] ?? 0, CUBE_LEVELS[bi] ?? 0);
  const greyStep = Math.max(0, Math.min(23, Math.round(((r + g + b) / 3 - 8) / 10)));
  const grey = 8 + greyStep * 10;
  return distance(r, g, b, grey, grey, grey) < cubeDistance ? 232 + greyStep : cube;
}

/** The size in cells at which an image fits `cols` x `rows` cells with its proportions kept. */
export function fitCells(image: { width: number; height: number }, cols: number, rows: number) {
  if (cols <= 0 || rows <= 0) return { cols: 0, rows: 0 };
  const scale = Math.min(cols / image.width, (rows * 2) / image.height);
  const pixelCols = Math.max(1, Math.min(cols, Math.round(image.width * scale)));
  const pixelRows = Math.max(2, Math.min(rows * 2, Math.round(image.height * scale)));
  return { cols: pixelCols, rows: Math.ceil(pixelRows / 2) };
}

/** The average colour of the image's pixels in a rectangle, blended over black where they are transparent. */
function averageColour(image: DecodedImage, x0: number, y0: number, x1: number, y1: number): [number, number, number] {
  let r = 0;
  let g = 0;
  let b = 0;
  let count = 0;
  // Sample at most 4x4 points per target pixel: plenty for a preview, and fast for large images.
  const stepX = Math.max(1, Math.floor((x1 - x0) / 4));
  const stepY = Math.max(1, Math.floor((y1 - y0) / 4));
  for (let y = y0; y < y1; y += stepY) {
    for (let x = x0; x < x1; x += stepX) {
      const at = (y * image.width + x) * 4;
      const alpha = (image.rgba[at + 3] ?? 255) / 255;
      r += (image.rgba[at] ?? 0) * alpha;
      g += (image.rgba[at + 1] ?? 0) * alpha;
      b += (image.rgba[at + 2] ?? 0) * alpha;
      count++;
    }
  }
  return count === 0 ? [0, 0, 0] : [r / count, g / count, b / count];
}

/** The colour index of every target pixel, row by row, for an image drawn `pixelCols` x `pixelRows`. */
function sampleGrid(image: DecodedImage, pixelCols: number, pixelRows: number): number[][] {
  const grid: number[][] = [];
  for (let py = 0; py < pixelRows; py++) {
    const y0 = Math.floor((py * image.height) / pixelRows);
    const y1 = Math.max(y0 + 1, Math.floor(((py + 1) * image.height) / pixelRows));
    const row: number[] = [];
    for (let px = 0; px < pixelCols; px++) {
      const x0 = Math.floor((px * image.width) / pixelCols);
      const x1 = Math.max(x0 + 1, Math.floor(((px + 1) * image.width) / pixelCols));
      const [r, g, b] = averageColour(image, x0, y0, x1, y1);
      row.push(xterm256(r, g, b));
    }
    grid.push(row);
  }
  return grid;
}

/**
 * The image as lines of half-block cells fitting `cols` x `rows`, each line `cols` wide or less, with SGR colour
 * sequences and a reset at the end of each line.
 */
export function halfBlockLines(image: DecodedImage, cols: number, rows: number): string[] {
  const size = fitCells(image, cols, rows);
  if (size.cols === 0) return [];
  const grid = sampleGrid(image, size.cols, size.rows * 2);
  const lines: string[] = [];
  for (let cy = 0; cy < size.rows; cy++) {
    const upper = grid[cy * 2] ?? [];
    const lower = grid[cy * 2 + 1] ?? upper;
    let line = '';
    let last = '';
    for (let x = 0; x < size.cols; x++) {
      const colours = `\x1b[38;5;${upper[x] ?? 0};48;5;${lower[x] ?? 0}m`;
      if (colours !== last) line += colours;
      last = colours;
      line += UPPER_HALF_BLOCK;
    }
    lines.push(`${line}\x1b[m`);
  }
  return lines;
}
