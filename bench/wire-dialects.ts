/**
 * What the load generator says and reads for each kind of server, all with one request in flight per connection:
 *
 * - `imgcache`: our protocol. HELLO, then back-to-back `get` REQUESTs; an answer is REPLY, DATA frames, END ([P-19],
 *   [P-24]), acknowledged with a RECEIVED sent in the same write as the next REQUEST ([P-40]). A session that ends (quota used up, a closing NOTICE, a REJECT) is replaced by a new connection.
 * - `bare`: the baseline's protocol (bench/bare-server.ts), the same frame shape without handshake, JSON or END: a
 *   REQUEST frame whose body is the image name, answered by one DATA frame holding the whole image.
 * - `http`: HTTP/1.1 keep-alive `GET`, answered with a Content-Length body.
 *
 * The readers count body bytes and never keep them.
 */
import { encodeFrame, encodeJsonFrame, MessageType } from '../src/protocol/index.ts';
import { DATA_FRAME_TYPE, FrameSkipper } from './frame-skipper.ts';
import { HttpResponseSkipper } from './http-response-skipper.ts';

export type WireProtocol = 'imgcache' | 'bare' | 'http';

export interface ReaderEvents {
  /** the connection may send requests (imgcache: the WELCOME came) */
  ready(): void;
  /** one whole answer came, with this many body bytes */
  answered(bodyBytes: number): void;
  /** the server ended the session; `retry` says whether to reconnect at once (false: it was turned away) */
  sessionOver(reason: string, retry: boolean): void;
  /** an answer the generator did not expect (an error, a bad status) */
  failed(message: string): void;
}

export interface ByteReader {
  push(chunk: Buffer, start: number, end: number): void;
}

export interface WireDialect {
  /** sent right after connecting, or null when the connection is ready at once */
  greeting: Buffer | null;
  /** the next request to send (a shared, pre-encoded buffer) */
  nextRequest(): Buffer;
  /**
   * [P-40] the receipt to send once the answer to `request` (a buffer nextRequest gave) has been read whole, pre-encoded
   * too; null when the protocol has none
   */
  receiptFor(request: Buffer): Buffer | null;
  createReader(events: ReaderEvents): ByteReader;
}

/** Request ids cycle through this many pre-encoded frames: no encoding per request. */
const REQUEST_RING = 256;

export function createDialect(protocol: WireProtocol, target: string): WireDialect {
  switch (protocol) {
    case 'imgcache':
      return imgcacheDialect(target);
    case 'bare':
      return bareDialect(target);
    case 'http':
      return httpDialect(target);
  }
}

function imgcacheDialect(image: string): WireDialect {
  const requests = Array.from({ length: REQUEST_RING }, (_, index) =>
    encodeJsonFrame(MessageType.REQUEST, { id: index + 1, command: 'get', image }),
  );
  const receipts = new Map(
    requests.map((request, index) => [request, encodeJsonFrame(MessageType.RECEIVED, { id: index + 1 })]),
  );
  let next = 0;
  return {
    greeting: encodeJsonFrame(MessageType.HELLO, { versions: [1], client: 'imgcache-bench/1' }),
    nextRequest: () => {
      next = (next + 1) % REQUEST_RING;
      return requests[next] as Buffer;
    },
    receiptFor: (request) => receipts.get(request) ?? null,
    createReader: (events) => {
      const skipper: FrameSkipper = new FrameSkipper(
        (type, _length, body) => {
          if (type === MessageType.END) events.answered(skipper.takeDataBytes());
          else if (type === MessageType.WELCOME) events.ready();
          else if (type === MessageType.ERROR) onError(events, body);
          // [P-29] [P-70] only a closing NOTICE ends the session; catalog-changed and the like are only news.
          else if (type === MessageType.NOTICE && jsonField(body, 'closing') === 'true')
            events.sessionOver(`notice ${jsonField(body, 'kind')}`, true);
          else if (type === MessageType.REJECT) events.sessionOver(`reject ${jsonField(body, 'reason')}`, false);
        },
        [MessageType.ERROR, MessageType.NOTICE, MessageType.REJECT],
      );
      return skipper;
    },
  };
}

/** [P-21] quota-exhausted ends the session: a new one starts. Any other ERROR is a failure. */
function onError(events: ReaderEvents, body: Buffer | null): void {
  const code = jsonField(body, 'code');
  if (code === 'quota-exhausted') {
    events.sessionOver(code, true);
    return;
  }
  events.failed(`ERROR ${code}`);
  if (jsonField(body, 'fatal') === 'true') events.sessionOver(`fatal ${code}`, true);
}

function jsonField(body: Buffer | null, field: string): string {
  if (body === null) return '?';
  try {
    return String((JSON.parse(body.toString('utf8')) as Record<string, unknown>)[field]);
  } catch {
    return '?';
  }
}

function bareDialect(image: string): WireDialect {
  const request = encodeFrame(MessageType.REQUEST, Buffer.from(image, 'utf8'));
  return {
    greeting: null,
    nextRequest: () => request,
    receiptFor: () => null,
    createReader: (events) =>
      new FrameSkipper((type, length) => {
        if (type === DATA_FRAME_TYPE) events.answered(length);
        else events.failed(`frame type 0x${type.toString(16)}`);
      }),
  };
}

function httpDialect(urlPath: string): WireDialect {
  const request = Buffer.from(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 'latin1');
  return {
    greeting: null,
    nextRequest: () => request,
    receiptFor: () => null,
    createReader: (events) =>
      new HttpResponseSkipper((status, bodyBytes) => {
        if (status === 200) events.answered(bodyBytes);
        else events.failed(`HTTP ${status}`);
      }),
  };
}
