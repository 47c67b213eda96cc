/**
 * A minimal PNG encoder for truecolour 8-bit RGB images, using only node:zlib.
 *
 * Layout: signature, IHDR, one IDAT (zlib stream of filtered scanlines), IEND.
 * Each scanline gets the PNG filter (None, Sub, Up, Average, Paeth) whose output
 * has the smallest sum of absolute values, the usual heuristic from the PNG spec.
 */
import { crc32, deflateSync } from 'node:zlib';
import { FILTER_TYPE_COUNT, predictByte } from '../png/filter-prediction.ts';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const BYTES_PER_PIXEL = 3;
const BIT_DEPTH = 8;
const COLOUR_TYPE_RGB = 2;

/** Builds one chunk: length, type, data, CRC32 over type and data. */
function makeChunk(type: string, data: Buffer): Buffer {
  const typeBytes = Buffer.from(type, 'latin1');
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  typeBytes.copy(chunk, 4);
  data.copy(chunk, 8);
  const crc = crc32(data, crc32(typeBytes));
  chunk.writeUInt32BE(crc >>> 0, 8 + data.length);
  return chunk;
}

function makeHeader(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = BIT_DEPTH;
  header[9] = COLOUR_TYPE_RGB;
  header[10] = 0; // compression: deflate
  header[11] = 0; // filter method: adaptive
  header[12] = 0; // interlace: none
  return header;
}

/** Byte `i` of `bytes`, or 0 outside the row (PNG treats missing neighbours as zero). */
function byteAt(bytes: Uint8Array, i: number): number {
  return i >= 0 ? (bytes[i] ?? 0) : 0;
}

/** Predicted value of byte `i` of `row` for the given filter type; `prev` is the row above (zeros for the first). */
function predict(filter: number, row: Uint8Array, prev: Uint8Array, i: number): number {
  const left = byteAt(row, i - BYTES_PER_PIXEL);
  const up = byteAt(prev, i);
  const upLeft = byteAt(prev, i - BYTES_PER_PIXEL);
  return predictByte(filter, left, up, upLeft);
}

/** Writes filter byte plus filtered bytes into `out` and returns the heuristic cost (sum of signed magnitudes). */
function filterRow(filter: number, row: Uint8Array, prev: Uint8Array, out: Uint8Array): number {
  out[0] = filter;
  let cost = 0;
  for (let i = 0; i < row.length; i++) {
    const value = (byteAt(row, i) - predict(filter, row, prev, i)) & 0xff;
    out[i + 1] = value;
    cost += value < 128 ? value : 256 - value;
  }
  return cost;
}

/** Filters all scanlines, choosing the cheapest filter per row. */
function filterScanlines(width: number, height: number, rgb: Uint8Array): Buffer {
  const stride = width * BYTES_PER_PIXEL;
  const result = Buffer.alloc(height * (stride + 1));
  const candidate = new Uint8Array(stride + 1);
  const best = new Uint8Array(stride + 1);
  let prev: Uint8Array = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = rgb.subarray(y * stride, (y + 1) * stride);
    let bestCost = Number.POSITIVE_INFINITY;
    for (let filter = 0; filter < FILTER_TYPE_COUNT; filter++) {
      const cost = filterRow(filter, row, prev, candidate);
      if (cost < bestCost) {
        bestCost = cost;
        best.set(candidate);
      }
    }
    result.set(best, y * (stride + 1));
    prev = row;
  }
  return result;
}

/** Encodes `rgb` (width * height * 3 bytes, row-major, no padding) as a PNG file. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`invalid PNG size ${width}x${height}`);
  }
  if (rgb.length !== width * height * BYTES_PER_PIXEL) {
    throw new RangeError(`expected ${width * height * BYTES_PER_PIXEL} RGB bytes, got ${rgb.length}`);
  }
  const compressed = deflateSync(filterScanlines(width, height, rgb), { level: 9 });
  return Buffer.concat([
    PNG_SIGNATURE,
    makeChunk('IHDR', makeHeader(width, height)),
    makeChunk('IDAT', compressed),
    makeChunk('IEND', Buffer.alloc(0)),
  ]);
}
