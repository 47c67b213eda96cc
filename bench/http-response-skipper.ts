/**
 * Reads HTTP/1.1 responses off a keep-alive connection for the load generator: parses the status line and
 * Content-Length of each header, then counts the body without keeping it. Only what a static file server sends is
 * understood (Content-Length bodies, no chunked encoding). Pure: no sockets.
 */

const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
/** A header longer than this is a broken response, not a slow one. */
const MAX_HEADER_BYTES = 16 * 1024;
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;

export type ResponseListener = (status: number, bodyBytes: number) => void;

export class HttpResponseError extends Error {
  readonly code = 'bad-http-response';
}

export class HttpResponseSkipper {
  readonly #onResponse: ResponseListener;
  /** header bytes of a header cut by the end of a read (rare); empty otherwise */
  #partialHeader: Buffer = Buffer.alloc(0);
  #inBody = false;
  #status = 0;
  #length = 0;
  #remaining = 0;

  constructor(onResponse: ResponseListener) {
    this.#onResponse = onResponse;
  }

  /** Feeds bytes `start`..`end` of `chunk`; reports each response once its last body byte is in. */
  push(chunk: Buffer, start: number, end: number): void {
    let offset = start;
    while (offset < end) {
      offset = this.#inBody ? this.#readBody(offset, end) : this.#readHeader(chunk, offset, end);
    }
  }

  #readHeader(chunk: Buffer, offset: number, end: number): number {
    const view = chunk.subarray(offset, end);
    if (this.#partialHeader.length === 0) {
      const found = view.indexOf(HEADER_END);
      if (found !== -1) {
        this.#startBody(view.toString('latin1', 0, found + 2));
        return offset + found + HEADER_END.length;
      }
    }
    // The header spans reads: keep its bytes (a few hundred) until its end is in.
    const before = this.#partialHeader.length;
    const joined = Buffer.concat([this.#partialHeader, view]);
    const found = joined.indexOf(HEADER_END, Math.max(0, before - (HEADER_END.length - 1)));
    if (found === -1) {
      if (joined.length > MAX_HEADER_BYTES) throw new HttpResponseError('an HTTP header over 16 KiB');
      this.#partialHeader = joined;
      return end;
    }
    this.#partialHeader = Buffer.alloc(0);
    this.#startBody(joined.toString('latin1', 0, found + 2));
    return offset + (found + HEADER_END.length - before);
  }

  /** `head` is the status line and header fields, each ending in CRLF. */
  #startBody(head: string): void {
    if (!head.startsWith('HTTP/1.')) throw new HttpResponseError(`not an HTTP/1.x response: ${head.slice(0, 40)}`);
    this.#status = Number(head.slice(9, 12));
    const length = CONTENT_LENGTH.exec(head);
    if (length === null) throw new HttpResponseError('a response without Content-Length');
    this.#length = Number(length[1]);
    this.#remaining = this.#length;
    this.#inBody = true;
    if (this.#remaining === 0) this.#finish();
  }

  #readBody(offset: number, end: number): number {
    const taken = Math.min(this.#remaining, end - offset);
    this.#remaining -= taken;
    if (this.#remaining === 0) this.#finish();
    return offset + taken;
  }

  #finish(): void {
    this.#inBody = false;
    this.#onResponse(this.#status, this.#length);
  }
}
