/**
 * A small PNG decoder for the preview, using only node:zlib: every colour type (grey, RGB, palette, grey+alpha,
 * RGBA) at bit depths 1 to 16, non-interlaced. Pixels come out as 8-bit RGBA. Interlaced images are refused with a
 * clear message; the preview then says so instead of drawing.
 */
import { inflate } from 'node:zlib';
import { isFilterType, predictByte } from '../../src/png/filter-prediction.ts';

export interface DecodedImage {
  width: number;
  height: number;
  /** width * height * 4 bytes, row by row, RGBA */
  rgba: Uint8Array;
}

export class PngDecodeError extends Error {
  readonly code = 'png-decode';
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Refuse images whose pixels would take more than this many bytes of memory (64 MiB as RGBA). */
const MAX_PIXELS = 16 * 1024 * 1024;
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

interface Header {
  width: number;
  height: number;
  bitDepth: number;
  colourType: number;
  interlace: number;
}

interface Chunks {
  header: Header;
  palette: Uint8Array | null;
  transparency: Uint8Array | null;
  data: Buffer;
}

function readChunks(file: Buffer): Chunks {
  if (file.length < 8 || !file.subarray(0, 8).equals(SIGNATURE)) throw new PngDecodeError('not a PNG file');
  let header: Header | null = null;
  let palette: Uint8Array | null = null;
  let transparency: Uint8Array | null = null;
  const data: Buffer[] = [];
  let offset = 8;
  while (offset + 8 <= file.length) {
    const length = file.readUInt32BE(offset);
    const type = file.toString('latin1', offset + 4, offset + 8);
    const body = file.subarray(offset + 8, offset + 8 + length);
    if (body.length !== length) throw new PngDecodeError(`the ${type} chunk is cut short`);
    offset += 12 + length;
    if (type === 'IHDR') {
      header = {
        width: body.readUInt32BE(0),
        height: body.readUInt32BE(4),
        bitDepth: body[8] ?? 0,
        colourType: body[9] ?? 0,
        interlace: body[12] ?? 0,
      };
    } else if (type === 'PLTE') palette = body;
    else if (type === 'tRNS') transparency = body;
    else if (type === 'IDAT') data.push(body);
    else if (type === 'IEND') break;
  }
  if (!header) throw new PngDecodeError('no IHDR chunk');
  return { header, palette, transparency, data: Buffer.concat(data) };
}

/** Undoes the per-row filters in place; returns the raw scanlines without their filter bytes. */
function unfilter(inflated: Buffer, rowBytes: number, height: number, pixelBytes: number): Uint8Array {
  const out = new Uint8Array(rowBytes * height);
  for (let y = 0; y < height; y++) {
    const filter = inflated[y * (rowBytes + 1)] ?? -1;
    if (!isFilterType(filter)) throw new PngDecodeError(`unknown filter type ${filter} on row ${y}`);
    const source = y * (rowBytes + 1) + 1;
    const row = y * rowBytes;
    const previous = row - rowBytes;
    for (let x = 0; x < rowBytes; x++) {
      const raw = inflated[source + x] ?? 0;
      const left = x >= pixelBytes ? (out[row + x - pixelBytes] ?? 0) : 0;
      const up = y > 0 ? (out[previous + x] ?? 0) : 0;
      const upLeft = y > 0 && x >= pixelBytes ? (out[previous + x - pixelBytes] ?? 0) : 0;
      out[row + x] = (raw + predictByte(filter, left, up, upLeft)) & 0xff;
    }
  }
  return out;
}

/** Sample `index` of a row at `bitDepth`, scaled to 0..255. */
function sample(row: Uint8Array, rowStart: number, index: number, bitDepth: number): number {
  if (bitDepth === 8) return row[rowStart + index] ?? 0;
  if (bitDepth === 16) return row[rowStart + index * 2] ?? 0;
  const perByte = 8 / bitDepth;
  const byte = row[rowStart + Math.floor(index / perByte)] ?? 0;
  const shift = 8 - bitDepth * ((index % perByte) + 1);
  const value = (byte >> shift) & ((1 << bitDepth) - 1);
  return Math.round((value * 255) / ((1 << bitDepth) - 1));
}

/** The raw palette index (not scaled) of sample `index`, for colour type 3. */
function paletteIndex(row: Uint8Array, rowStart: number, index: number, bitDepth: number): number {
  if (bitDepth === 8) return row[rowStart + index] ?? 0;
  const perByte = 8 / bitDepth;
  const byte = row[rowStart + Math.floor(index / perByte)] ?? 0;
  return (byte >> (8 - bitDepth * ((index % perByte) + 1))) & ((1 << bitDepth) - 1);
}

function toRgba(chunks: Chunks, pixels: Uint8Array, rowBytes: number): Uint8Array {
  const { width, height, bitDepth, colourType } = chunks.header;
  const channels = CHANNELS[colourType] ?? 1;
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const rowStart = y * rowBytes;
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 4;
      const first = x * channels;
      let r: number;
      let g: number;
      let b: number;
      let a = 255;
      if (colourType === 3) {
        const index = paletteIndex(pixels, rowStart, x, bitDepth);
        r = chunks.palette?.[index * 3] ?? 0;
        g = chunks.palette?.[index * 3 + 1] ?? 0;
        b = chunks.palette?.[index * 3 + 2] ?? 0;
        a = chunks.transparency?.[index] ?? 255;
      } else if (colourType === 0 || colourType === 4) {
        r = g = b = sample(pixels, rowStart, first, bitDepth);
        if (colourType === 4) a = sample(pixels, rowStart, first + 1, bitDepth);
      } else {
        r = sample(pixels, rowStart, first, bitDepth);
        g = sample(pixels, rowStart, first + 1, bitDepth);
        b = sample(pixels, rowStart, first + 2, bitDepth);
        if (colourType === 6) a = sample(pixels, rowStart, first + 3, bitDepth);
      }
      rgba[at] = r;
      rgba[at + 1] = g;
      rgba[at + 2] = b;
      rgba[at + 3] = a;
    }
  }
  return rgba;
}

function inflateAsync(data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    inflate(data, (error, result) =>
      error ? reject(new PngDecodeError(`the image data does not inflate: ${error.message}`)) : resolve(result),
    ),
  );
}

export async function decodePng(file: Buffer): Promise<DecodedImage> {
  const chunks = readChunks(file);
  const { width, height, bitDepth, colourType, interlace } = chunks.header;
  const channels = CHANNELS[colourType];
  if (channels === undefined) throw new PngDecodeError(`unknown colour type ${colourType}`);
  if (![1, 2, 4, 8, 16].includes(bitDepth)) throw new PngDecodeError(`unsupported bit depth ${bitDepth}`);
  if (interlace !== 0) throw new PngDecodeError('interlaced PNGs are not previewed');
  if (width === 0 || height === 0 || width * height > MAX_PIXELS)
    throw new PngDecodeError(`an image of ${width}x${height} pixels is not previewed`);
  if (colourType === 3 && !chunks.palette) throw new PngDecodeError('a palette image without a palette');
  const rowBytes = Math.ceil((width * channels * bitDepth) / 8);
  const pixelBytes = Math.max(1, Math.ceil((channels * bitDepth) / 8));
  const inflated = await inflateAsync(chunks.data);
  if (inflated.length < (rowBytes + 1) * height) throw new PngDecodeError('the image data is cut short');
  const pixels = unfilter(inflated, rowBytes, height, pixelBytes);
  return { width, height, rgba: toRgba(chunks, pixels, rowBytes) };
}
