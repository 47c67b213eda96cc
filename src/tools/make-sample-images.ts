/**
 * Draws the sample images that the image-cache server ships with and writes them as PNG files.
 *
 * Usage: npx tsx src/tools/make-sample-images.ts [folder]
 *   folder defaults to `cache/` at the repository root.
 *
 * The pictures use bold shapes and strong colours so they stay recognisable when shown as coloured
 * blocks in a terminal. Everything is deterministic (seeded PRNG), so re-running gives byte-identical
 * files. `terrain-large.png` is deliberately noisy so that it is larger than 1.2 MiB, which exercises
 * chunked transfers of images bigger than one 1 MiB frame.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from './mulberry32.ts';
import { encodePng } from './png-encoder.ts';

type Rgb = readonly [number, number, number];

interface Image {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;
}

interface SampleImage {
  readonly name: string;
  readonly draw: () => Image;
}

const DEFAULT_FOLDER = fileURLToPath(new URL('../../cache/', import.meta.url));

// ---------------------------------------------------------------------------------------------------------------------
// Small helpers: PRNG, colour maths, pixel access

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

function smoothstep(edge0: number, edge1: number, x: number): number {
  const t = clamp((x - edge0) / (edge1 - edge0), 0, 1);
  return t * t * (3 - 2 * t);
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function scale(colour: Rgb, factor: number): Rgb {
  return [colour[0] * factor, colour[1] * factor, colour[2] * factor];
}

/** Piecewise-linear gradient through `stops` (positions ascending in [0, 1]). */
function gradient(stops: ReadonlyArray<readonly [number, Rgb]>, t: number): Rgb {
  let previous = stops[0];
  if (previous === undefined) throw new RangeError('a gradient needs at least one stop');
  for (const stop of stops) {
    if (t <= stop[0]) {
      const span = stop[0] - previous[0];
      return span > 0 ? mix(previous[1], stop[1], (t - previous[0]) / span) : stop[1];
    }
    previous = stop;
  }
  return previous[1];
}

function createImage(width: number, height: number): Image {
  return { width, height, pixels: new Uint8Array(width * height * 3) };
}

function setPixel(image: Image, x: number, y: number, colour: Rgb): void {
  const offset = (y * image.width + x) * 3;
  image.pixels[offset] = clamp(Math.round(colour[0]), 0, 255);
  image.pixels[offset + 1] = clamp(Math.round(colour[1]), 0, 255);
  image.pixels[offset + 2] = clamp(Math.round(colour[2]), 0, 255);
}

function getPixel(image: Image, x: number, y: number): Rgb {
  const offset = (y * image.width + x) * 3;
  const { pixels } = image;
  return [pixels[offset] ?? 0, pixels[offset + 1] ?? 0, pixels[offset + 2] ?? 0];
}

/** Calls `shade` for every pixel; a returned colour is written, `undefined` leaves the pixel unchanged. */
function paint(image: Image, shade: (x: number, y: number) => Rgb | undefined): void {
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const colour = shade(x, y);
      if (colour !== undefined) setPixel(image, x, y, colour);
    }
  }
}

/** Signed distance from (x, y) to a rounded rectangle centred on (cx, cy); negative inside. */
function roundedRectDistance(x: number, y: number, cx: number, cy: number, halfSize: number, radius: number): number {
  const dx = Math.max(Math.abs(x - cx) - (halfSize - radius), 0);
  const dy = Math.max(Math.abs(y - cy) - (halfSize - radius), 0);
  return Math.hypot(dx, dy) - radius;
}

// ---------------------------------------------------------------------------------------------------------------------
// 1. Sunset: sky gradient, sun disc, sea with a glittering reflection, dark hills

const SKY_STOPS: ReadonlyArray<readonly [number, Rgb]> = [
  [0, [35, 15, 80]],
  [0.45, [150, 40, 110]],
  [0.8, [240, 100, 60]],
  [1, [255, 180, 70]],
];

function hillHeight(x: number, width: number): number {
  const u = x / width;
  const left = 70 * Math.exp(-(((u - 0.08) / 0.22) ** 2));
  const right = 55 * Math.exp(-(((u - 0.92) / 0.18) ** 2));
  const ripple = 4 * Math.sin(u * 40) + 2.5 * Math.sin(u * 97 + 1);
  return left + right + (left + right > 8 ? ripple : 0);
}

function drawSunset(): Image {
  const width = 320;
  const height = 200;
  const horizon = 130;
  const sun = { x: 160, y: 118, radius: 42 };
  const image = createImage(width, height);
  const random = mulberry32(20240601);
  const glitter = Array.from({ length: height }, () => 0.6 + 0.8 * random());

  paint(image, (x, y) => {
    if (y < horizon) {
      const sky = gradient(SKY_STOPS, y / horizon);
      const distance = Math.hypot(x - sun.x, y - sun.y);
      if (distance <= sun.radius) return mix([255, 245, 150], [255, 200, 60], distance / sun.radius);
      const glow = Math.max(0, 1 - (distance - sun.radius) / 60);
      return mix(sky, [255, 210, 110], glow * glow * 0.6);
    }
    const depth = (y - horizon) / (height - horizon);
    const sea = mix([70, 40, 110], [10, 15, 50], depth);
    const band = Math.floor((y - horizon) / 3);
    const halfWidth = sun.radius * (1 - depth * 0.6) * (glitter[band] ?? 1);
    const onReflection = Math.abs(x - sun.x) < halfWidth && (y - horizon) % 3 !== 2;
    return onReflection ? mix(sea, [255, 190, 80], 0.85 - depth * 0.4) : sea;
  });

  paint(image, (x, y) => (y > horizon + 6 - hillHeight(x, width) && y < horizon + 8 ? [30, 12, 40] : undefined));
  paint(image, (x, y) => {
    const shore = horizon + 8 + 30 * Math.exp(-(((x / width - 0.03) / 0.15) ** 2));
    return y >= horizon + 6 && y < shore && x < width * 0.35 ? [30, 12, 40] : undefined;
  });
  return image;
}

// ---------------------------------------------------------------------------------------------------------------------
// 2. Mandelbrot set with smooth (continuous escape-time) colouring

const MANDELBROT_MAX_ITERATIONS = 400;
const ESCAPE_RADIUS_SQUARED = 256 * 256;

/** Smooth iteration count for c = (cr, ci), or -1 when the point is inside the set. */
function mandelbrotSmooth(cr: number, ci: number): number {
  let zr = 0;
  let zi = 0;
  for (let n = 0; n < MANDELBROT_MAX_ITERATIONS; n++) {
    const zr2 = zr * zr;
    const zi2 = zi * zi;
    if (zr2 + zi2 > ESCAPE_RADIUS_SQUARED) {
      return n + 1 - Math.log2(Math.log(zr2 + zi2) / 2);
    }
    zi = 2 * zr * zi + ci;
    zr = zr2 - zi2 + cr;
  }
  return -1;
}

/** Cosine palette (after Inigo Quilez): deep blue through cyan, white and orange. */
function mandelbrotColour(smooth: number): Rgb {
  if (smooth < 0) return [0, 0, 0];
  const t = Math.sqrt(smooth) * 0.28;
  const channel = (phase: number): number => 255 * (0.5 + 0.5 * Math.cos(2 * Math.PI * (t + phase)));
  return [channel(0.0), channel(0.1), channel(0.2)];
}

function drawMandelbrot(): Image {
  const width = 640;
  const height = 480;
  const centre = { re: -0.65, im: 0 };
  const unitsPerPixel = 3.2 / width;
  const image = createImage(width, height);
  paint(image, (x, y) => {
    const cr = centre.re + (x - width / 2 + 0.5) * unitsPerPixel;
    const ci = centre.im + (y - height / 2 + 0.5) * unitsPerPixel;
    return mandelbrotColour(mandelbrotSmooth(cr, ci));
  });
  return image;
}

// ---------------------------------------------------------------------------------------------------------------------
// 3. A red die showing five on a checkerboard table

const PIP_LAYOUT_FIVE: ReadonlyArray<readonly [number, number]> = [
  [-1, -1],
  [1, -1],
  [0, 0],
  [-1, 1],
  [1, 1],
];

function drawCheckerboardDice(): Image {
  const size = 256;
  const tile = 32;
  const die = { x: 128, y: 124, half: 78, radius: 18, pipOffset: 42, pipRadius: 14 };
  const shadowShift = 10;
  const light: Rgb = [240, 228, 200];
  const dark: Rgb = [30, 60, 140];
  const image = createImage(size, size);

  paint(image, (x, y) => ((Math.floor(x / tile) + Math.floor(y / tile)) % 2 === 0 ? light : dark));
  paint(image, (x, y) => {
    const distance = roundedRectDistance(x, y, die.x + shadowShift, die.y + shadowShift, die.half, die.radius);
    return distance < 0 ? scale(getPixel(image, x, y), 0.45) : undefined;
  });
  paint(image, (x, y) => {
    const distance = roundedRectDistance(x, y, die.x, die.y, die.half, die.radius);
    if (distance >= 0) return undefined;
    if (distance > -4) return [120, 10, 15];
    const highlight = (1 - (x - die.x + die.half + (y - die.y + die.half)) / (4 * die.half)) * 0.35;
    return mix([205, 25, 30], [255, 90, 90], highlight);
  });
  for (const [column, row] of PIP_LAYOUT_FIVE) {
    const px = die.x + column * die.pipOffset;
    const py = die.y + row * die.pipOffset;
    paint(image, (x, y) => (Math.hypot(x - px, y - py) <= die.pipRadius ? [250, 250, 250] : undefined));
  }
  return image;
}

// ---------------------------------------------------------------------------------------------------------------------
// 4. Large fractal terrain (diamond-square) with per-pixel noise

const TERRAIN_GRID_EXPONENT = 10;
const SEA_LEVEL = 0.42;

/** Diamond-square height map on a (2^n + 1)^2 grid, normalised to [0, 1]. */
function diamondSquare(exponent: number, roughness: number, random: () => number): Float64Array {
  const size = 2 ** exponent + 1;
  const heights = new Float64Array(size * size);
  const at = (x: number, y: number): number => heights[y * size + x] ?? 0;
  const set = (x: number, y: number, value: number): void => {
    heights[y * size + x] = value;
  };
  const corners: ReadonlyArray<readonly [number, number]> = [
    [0, 0],
    [size - 1, 0],
    [0, size - 1],
    [size - 1, size - 1],
  ];
  for (const [x, y] of corners) {
    set(x, y, random());
  }
  let amplitude = 1;
  for (let step = size - 1; step > 1; step /= 2) {
    const half = step / 2;
    const neighbours: ReadonlyArray<readonly [number, number]> = [
      [-half, 0],
      [half, 0],
      [0, -half],
      [0, half],
    ];
    for (let y = half; y < size; y += step) {
      for (let x = half; x < size; x += step) {
        const average =
          (at(x - half, y - half) + at(x + half, y - half) + at(x - half, y + half) + at(x + half, y + half)) / 4;
        set(x, y, average + (random() - 0.5) * amplitude);
      }
    }
    for (let y = 0; y < size; y += half) {
      for (let x = (y / half) % 2 === 0 ? half : 0; x < size; x += step) {
        let sum = 0;
        let count = 0;
        for (const [dx, dy] of neighbours) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx >= 0 && nx < size && ny >= 0 && ny < size) {
            sum += at(nx, ny);
            count++;
          }
        }
        set(x, y, sum / count + (random() - 0.5) * amplitude);
      }
    }
    amplitude *= roughness;
  }
  return normalise(heights);
}

function normalise(values: Float64Array): Float64Array {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const value of values) {
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  return values.map((value) => (value - min) / (max - min));
}

const LAND_STOPS: ReadonlyArray<readonly [number, Rgb]> = [
  [0, [225, 205, 140]],
  [0.06, [215, 195, 125]],
  [0.1, [80, 165, 60]],
  [0.35, [40, 115, 40]],
  [0.5, [115, 95, 70]],
  [0.68, [140, 130, 120]],
  [0.76, [240, 240, 248]],
  [1, [255, 255, 255]],
];

/** Base colour for a height in [0, 1] and the strength of the per-pixel texture noise for that material. */
function terrainMaterial(height: number): { colour: Rgb; noise: number } {
  if (height < SEA_LEVEL) {
    const depth = (SEA_LEVEL - height) / SEA_LEVEL;
    return { colour: mix([60, 130, 210], [10, 30, 110], smoothstep(0, 0.6, depth)), noise: 20 };
  }
  const land = (height - SEA_LEVEL) / (1 - SEA_LEVEL);
  return { colour: gradient(LAND_STOPS, land), noise: land > 0.72 ? 20 : 44 };
}

function drawTerrain(): Image {
  const width = 1024;
  const height = 768;
  const random = mulberry32(7);
  const heights = diamondSquare(TERRAIN_GRID_EXPONENT, 0.55, random);
  const gridSize = 2 ** TERRAIN_GRID_EXPONENT + 1;
  const heightAt = (x: number, y: number): number => heights[y * gridSize + x] ?? 0;
  const image = createImage(width, height);

  paint(image, (x, y) => {
    const h = heightAt(x, y);
    const { colour, noise } = terrainMaterial(h);
    const slope = h < SEA_LEVEL ? 0 : (heightAt(x + 1, y + 1) - h) * 60;
    const lit = scale(colour, clamp(1 - slope, 0.55, 1.3));
    const grain = (random() - 0.5) * noise;
    return [lit[0] + grain + (random() - 0.5) * 8, lit[1] + grain, lit[2] + grain + (random() - 0.5) * 8];
  });
  return image;
}

// ---------------------------------------------------------------------------------------------------------------------

const SAMPLES: readonly SampleImage[] = [
  { name: 'sunset.png', draw: drawSunset },
  { name: 'mandelbrot.png', draw: drawMandelbrot },
  { name: 'checkerboard-dice.png', draw: drawCheckerboardDice },
  { name: 'terrain-large.png', draw: drawTerrain },
];

function writeSamples(folder: string): void {
  mkdirSync(folder, { recursive: true });
  for (const sample of SAMPLES) {
    const image = sample.draw();
    const png = encodePng(image.width, image.height, image.pixels);
    writeFileSync(join(folder, sample.name), png);
    console.log(`${sample.name} ${png.length}`);
  }
}

writeSamples(process.argv[2] === undefined ? DEFAULT_FOLDER : resolve(process.argv[2]));
