/**
 * [P-18] [P-45] One page of the catalog for a `list` REPLY, as the JSON text of the whole REPLY body: the images
 * after `after` in catalog order, as many as fit within the frame limit (and `limit`), with `more` and `next`. Pure:
 * the glue passes the catalog's sorted images and writes the text it gets back.
 */
import type { ImageInfo, Quota, SessionIdentity } from '../protocol/messages.ts';

export interface ListPageRequest {
  requestId: number;
  /** only images whose name sorts after this one [P-45] */
  after?: string;
  /** at most this many images [P-45] */
  limit?: number;
}

export interface ListPageContext {
  /** the catalog's images, sorted by the UTF-8 bytes of their names [P-18] */
  images: readonly ImageInfo[];
  session: SessionIdentity;
  quota: Quota;
  /** bytes: the largest frame body the server may send [P-3] */
  maxFrameBytes: number;
}

export interface ListPage {
  /** the REPLY body, at most maxFrameBytes bytes of UTF-8 */
  json: string;
  /** how many images it holds */
  count: number;
  more: boolean;
}

/** [P-18] Catalog order: the UTF-8 bytes of the names, which is Unicode code point order (not UTF-16 order). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The index of the first image whose name sorts after `after` (binary search: the images are sorted). */
export function firstIndexAfter(images: readonly ImageInfo[], after: string | undefined): number {
  if (after === undefined) return 0;
  const key = Buffer.from(after, 'utf8');
  let low = 0;
  let high = images.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const name = images[middle]?.name ?? '';
    if (Buffer.compare(Buffer.from(name, 'utf8'), key) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * [P-45] The REPLY: `{"id","command","status","images":[…],"more","next","session","quota"}`. An image goes in only
 * when the body, closed with `"more":true,"next":<its name>`, still fits within maxFrameBytes; `next` is the name of
 * the last image given (null when `more` is false). Throws if not one image fits while some are left: with names of at
 * most 255 characters and maxFrameBytes of at least 4096 that cannot happen.
 */
export function listPage(request: ListPageRequest, context: ListPageContext): ListPage {
  const { images, maxFrameBytes } = context;
  const start = firstIndexAfter(images, request.after);
  const limit = request.limit ?? Number.POSITIVE_INFINITY;
  const head = `{"id":${request.requestId},"command":"list","status":"ok","images":[`;
  const tail = `,"session":${JSON.stringify(context.session)},"quota":${JSON.stringify(context.quota)}}`;
  // The body without images and with "more":true,"next":"" (the name of `next` is counted per candidate).
  const fixedBytes = byteLength(head) + byteLength(`],"more":true,"next":""`) + byteLength(tail);
  const items: string[] = [];
  let itemBytes = 0;
  let index = start;
  for (; index < images.length && items.length < limit; index++) {
    const image = images[index] as ImageInfo;
    const item = JSON.stringify({
      name: image.name,
      bytes: image.bytes,
      modified: image.modified,
      sha256: image.sha256,
    });
    const separator = items.length === 0 ? 0 : 1;
    // The next name, as JSON without its quotes (already counted): its escaped length.
    const nextBytes = byteLength(JSON.stringify(image.name)) - 2;
    if (fixedBytes + itemBytes + separator + byteLength(item) + nextBytes > maxFrameBytes) break;
    items.push(item);
    itemBytes += separator + byteLength(item);
  }
  const more = index < images.length;
  if (more && items.length === 0 && limit > 0) {
    throw new Error(`list: not one image fits in a frame of ${maxFrameBytes} bytes`);
  }
  const last = images[index - 1];
  const next = more && last !== undefined && items.length > 0 ? JSON.stringify(last.name) : 'null';
  const json = `${head}${items.join(',')}],"more":${more},"next":${next}${tail}`;
  return { json, count: items.length, more };
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
