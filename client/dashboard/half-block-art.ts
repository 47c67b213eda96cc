/**
 * Draws a decoded image in terminal cells: each cell shows two pixels, the upper half block '▀' in the colour of
 * the upper pixel over a background of the lower one, so a cell (about twice as tall as wide) holds two square
 * pixels. Two ways to write the colours: truecolor (24-bit SGR, exact) for terminals that say they support it
 * (COLORTERM=truecolor or 24bit), else the xterm 256-colour palette with Floyd-Steinberg dithering, so that an area
 * whose colour the palette lacks (cream, a muted purple) is drawn as a mix of the nearest ones and looks like it.
 * Pure: image and size in, lines out.
 */
import type { DecodedImage } from './png-decoder.ts';

export const UPPER_HALF_BLOCK = '▀';
const CUBE_LEVELS = [0, 95, 135, 175, 215, 255];

export type Rgb = readonly [number, number, number];
export type ColourMode = 'truecolor' | '256';

/** The colour mode a terminal asks for in its environment (COLORTERM), as terminals and tmux set it. */
export function colourModeOf(env: NodeJS.ProcessEnv): ColourMode {
  return /^(truecolor|24bit)$/i.test(env.COLORTERM ?? '') ? 'truecolor' : '256';
}

/** The xterm palette's colours 16-255: the 6x6x6 cube, then the 24 greys. */
const PALETTE: Rgb[] = [
  ...Array.from({ length: 216 }, (_, i): Rgb => {
    const level = (n: number) => CUBE_LEVELS[n] ?? 0;
    return [level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6)];
  }),
  ...Array.from({ length: 24 }, (_, i): Rgb => [8 + 10 * i, 8 + 10 * i, 8 + 10 * i]),
];

function distance(a: Rgb, r: number, g: number, b: number): number {
  // Weighted by how much the eye cares about each channel ("redmean" would be closer; this is cheap and good).
  return 3 * (a[0] - r) ** 2 + 4 * (a[1] - g) ** 2 + 2 * (a[2] - b) ** 2;
}

const nearestCache = new Map<number, number>();

/** The xterm 256-colour index (16-255) nearest to an RGB colour, over the whole cube and grey ramp. */
export function xterm256(r: number, g: number, b: number): number {
  const key = (Math.round(r) << 16) | (Math.round(g) << 8) | Math.round(b);
  const cached = nearestCache.get(key);
  if (cached !== undefined) return cached;
  let best = 0;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const [index, colour] of PALETTE.entries()) {
    const d = distance(colour, r, g, b);
    if (d < bestDistance) {
      best = index;
      bestDistance = d;
    }
  }
  if (nearestCache.size > 65_536) nearestCache.clear();
  nearestCache.set(key, 16 + best);
  return 16 + best;
}

/** The RGB colour of an xterm palette index 16-255. */
export function paletteColour(index: number): Rgb {
  return PALETTE[index - 16] ?? [0, 0, 0];
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
function averageColour(image: DecodedImage, x0: number, y0: number, x1: number, y1: number): Rgb {
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

/** The colour of every target pixel, row by row, for an image drawn `pixelCols` x `pixelRows`. */
export function sampleGrid(image: DecodedImage, pixelCols: number, pixelRows: number): Rgb[][] {
  const grid: Rgb[][] = [];
  for (let py = 0; py < pixelRows; py++) {
    const y0 = Math.floor((py * image.height) / pixelRows);
    const y1 = Math.max(y0 + 1, Math.floor(((py + 1) * image.height) / pixelRows));
    const row: Rgb[] = [];
    for (let px = 0; px < pixelCols; px++) {
      const x0 = Math.floor((px * image.width) / pixelCols);
      const x1 = Math.max(x0 + 1, Math.floor(((px + 1) * image.width) / pixelCols));
      row.push(averageColour(image, x0, y0, x1, y1));
    }
    grid.push(row);
  }
  return grid;
}

const clamp = (value: number) => Math.max(0, Math.min(255, value));

/**
 * The palette index of every pixel of `grid`, with Floyd-Steinberg error diffusion when `dither`: each pixel's
 * error (wanted minus drawn) is passed on to its neighbours to the right and below (7/16, 3/16, 5/16, 1/16).
 */
export function quantize(grid: readonly Rgb[][], dither: boolean): number[][] {
  const height = grid.length;
  const width = grid[0]?.length ?? 0;
  const work = grid.map((row) => row.map((colour) => [...colour] as [number, number, number]));
  const out: number[][] = [];
  for (let y = 0; y < height; y++) {
    const row: number[] = [];
    for (let x = 0; x < width; x++) {
      const wanted = work[y]?.[x] ?? [0, 0, 0];
      const index = xterm256(clamp(wanted[0]), clamp(wanted[1]), clamp(wanted[2]));
      row.push(index);
      if (!dither) continue;
      const drawn = paletteColour(index);
      const error = [wanted[0] - drawn[0], wanted[1] - drawn[1], wanted[2] - drawn[2]];
      const spread = (dx: number, dy: number, share: number) => {
        const target = work[y + dy]?.[x + dx];
        if (!target) return;
        for (let c = 0; c < 3; c++) target[c] = (target[c] ?? 0) + ((error[c] ?? 0) * share) / 16;
      };
      spread(1, 0, 7);
      spread(-1, 1, 3);
      spread(0, 1, 5);
      spread(1, 1, 1);
    }
    out.push(row);
  }
  return out;
}

function cellLines(size: { cols: number; rows: number }, colourOf: (x: number, y: number) => string): string[] {
  const lines: string[] = [];
  for (let cy = 0; cy < size.rows; cy++) {
    let line = '';
    let last = '';
    for (let x = 0; x < size.cols; x++) {
      const colours = colourOf(x, cy);
      if (colours !== last) line += colours;
      last = colours;
      line += UPPER_HALF_BLOCK;
    }
    lines.push(`${line}\x1b[m`);
  }
  return lines;
}

/**
 * The image as lines of half-block cells fitting `cols` x `rows`, each line `cols` wide or less, with SGR colour
 * sequences and a reset at the end of each line: 256 colours, dithered (what blessed can hold), or truecolor.
 */
export function halfBlockLines(image: DecodedImage, cols: number, rows: number, mode: ColourMode = '256'): string[] {
  const size = fitCells(image, cols, rows);
  if (size.cols === 0) return [];
  const grid = sampleGrid(image, size.cols, size.rows * 2);
  if (mode === 'truecolor') {
    const rgb = (colour: Rgb | undefined) => (colour ?? [0, 0, 0]).map((channel) => Math.round(channel)).join(';');
    return cellLines(size, (x, cy) => {
      const upper = grid[cy * 2]?.[x];
      const lower = grid[cy * 2 + 1]?.[x] ?? upper;
      return `\x1b[38;2;${rgb(upper)};48;2;${rgb(lower)}m`;
    });
  }
  const indexes = quantize(grid, true);
  return cellLines(size, (x, cy) => {
    const upper = indexes[cy * 2]?.[x] ?? 0;
    const lower = indexes[cy * 2 + 1]?.[x] ?? upper;
    return `\x1b[38;5;${upper};48;5;${lower}m`;
  });
}
