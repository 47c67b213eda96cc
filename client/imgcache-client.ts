/**
 * The promise-based protocol client: connect (with the handshake), list, get, usage, exit, close. The CLI, the
 * dashboard, the tests and the benchmark all use it. It sees the server only through src/protocol.
 *
 * Requests may be issued without waiting: they are sent at once (pipelining, [P-16]) and their answers are matched
 * in order. A stream's DATA bodies are handed to the sink of the request they belong to in the pieces the socket
 * brought them in, never copied into one buffer by this class (DataPassThroughReader).
 */
import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import {
  CLIENT_FIRST_FRAME_MAX_BYTES,
  ConnectionClosedError,
  encodeJsonFrame,
  type Frame,
  FrameDecoder,
  type ImageInfo,
  IntegrityError,
  MalformedMessageError,
  MessageType,
  type NotModifiedReply,
  PROTOCOL_VERSIONS,
  parseErrorBody,
  parseJsonBody,
  parseNotice,
  parseReject,
  parseReply,
  parseStreamEnd,
  parseWelcome,
  type Quota,
  type ReceivedErrorBody,
  type ReceivedNotice,
  RejectedError,
  ServerError,
  type SessionIdentity,
  type StreamEnd,
  type Welcome,
} from '../src/protocol/index.ts';
import { DataPassThroughReader } from './data-pass-through.ts';
import { notImgcacheServer, SNIFF_BYTES } from './peer-sniff.ts';
import {
  type ClientTlsOptions,
  looksLikeTlsRecord,
  openTransport,
  tlsFailureOf,
  tlsRequiredError,
} from './tls-connect.ts';

export interface ConnectOptions {
  host?: string;
  port?: number;
  /** names the client software in the HELLO [P-8] */
  clientName?: string;
  /** [P-60] the client's key, sent as the HELLO's `credential` (none: an anonymous session) */
  credential?: string;
  versions?: readonly number[];
  /** ms to wait for the connection and the server's first frame */
  timeoutMs?: number;
  /** [P-69] connect with TLS and verify the server's certificate and name (absent: plain TCP) */
  tls?: ClientTlsOptions;
}

/** [P-46] What part of the usage history to ask for: one session by name, the sessions admitted in a time range. */
export interface UsageFilters {
  client?: string;
  /** ISO-8601 */
  since?: string;
  until?: string;
}

export interface ListResult {
  images: ImageInfo[];
  session: SessionIdentity;
  quota: Quota;
}

/** Receives the content of a stream, piece by piece; may return a promise to slow the connection down. */
export interface StreamSink {
  write(piece: Buffer): undefined | Promise<void>;
}

export interface StreamResult {
  reply: Record<string, unknown>;
  end: StreamEnd;
  quota: Quota;
}

/**
 * Called with the image bytes received so far and the size the REPLY announced: after each chunk the socket gives
 * (a DATA frame is up to 1 MiB, and a slow link brings it in many chunks), so progress moves as the bytes arrive.
 */
export type ProgressListener = (received: number, total: number) => void;

export interface GetOptions {
  /** [P-34] the SHA-256 of the copy held: when it is still the image's, the server answers not-modified */
  have?: string;
  onProgress?: ProgressListener;
}

/** A `get` answered with the image's bytes [P-19], or not-modified [P-35] (nothing was sent, nothing was counted). */
export type GetOutcome =
  | ({ status: 'ok' } & StreamResult)
  | { status: 'not-modified'; reply: NotModifiedReply; quota: Quota };

interface Pending {
  command: string;
  sink: StreamSink | null;
  onProgress: ProgressListener | null;
  /** the stream's announced length, when its REPLY gave one */
  total: number;
  resolve(value: { reply: Record<string, unknown>; end: StreamEnd | null }): void;
  reject(error: Error): void;
  hash: Hash | null;
  received: number;
  reply: Record<string, unknown> | null;
  /** [P-40] when the last progress receipt for this stream was sent (or its first bytes came) */
  progressReportedAt?: number;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7878;

/** [P-40] [P-41] A stream still being read after this long is reported to the server, at most this often. */
const PROGRESS_RECEIPT_MS = 500;

export class ImgcacheClient extends EventEmitter<{
  notice: [ReceivedNotice];
  quota: [Quota];
  close: [Error | null];
}> {
  readonly welcome: Welcome;
  #quota: Quota;
  readonly #socket: net.Socket;
  readonly #reader: DataPassThroughReader;
  readonly #pending: Pending[] = [];
  #nextId = 1;
  #closedError: Error | null = null;
  #closed = false;
  #closingNotice: ReceivedNotice | null = null;
  #slowWrites = 0;
  /** [P-48] [P-75] requests waiting their turn after a rate-limited refusal, the last of them, and the last hint */
  #pacedWaiting = 0;
  #pacedTail: Promise<unknown> = Promise.resolve();
  #retryAfterMs = 0;

  private constructor(socket: net.Socket, reader: DataPassThroughReader, welcome: Welcome, leftover: Frame[]) {
    super();
    this.#socket = socket;
    this.#reader = reader;
    this.welcome = welcome;
    this.#quota = welcome.quota;
    reader.setMaxBodyBytes(welcome.limits.maxFrameBytes);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => this.#fail(new ConnectionClosedError(`connection error: ${error.message}`)));
    socket.on('close', () => this.#fail(new ConnectionClosedError('the server closed the connection')));
    for (const frame of leftover) this.#onFrame(frame);
  }

  /** Connects and completes the handshake; rejects with RejectedError when the server does not admit us [P-9]. */
  static connect(options: ConnectOptions = {}): Promise<ImgcacheClient> {
    const host = options.host ?? DEFAULT_HOST;
    const port = options.port ?? DEFAULT_PORT;
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const { socket, ready } = openTransport(host, port, options.tls);
      const reader = new DataPassThroughReader(new FrameDecoder({ maxBodyBytes: CLIENT_FIRST_FRAME_MAX_BYTES }));
      const fail = (error: Error) => {
        cleanup();
        socket.destroy();
        reject(error);
      };
      const onError = (error: Error) =>
        fail(
          tlsFailureOf(error, host, port) ??
            new ConnectionClosedError(`cannot connect to ${host}:${port}: ${error.message}`),
        );
      // The first bytes, kept to tell an imgcache server from something else answering on that port.
      let head = Buffer.alloc(0);
      const onClose = () =>
        fail(
          notImgcacheServer(host, port, head) ??
            new ConnectionClosedError('the server closed the connection during the handshake'),
        );
      const onData = (chunk: Buffer) => {
        // [P-69] A TLS record where the first frame should be: the server speaks TLS and we did not.
        if (!options.tls && reader.bufferedBytes === 0 && looksLikeTlsRecord(chunk))
          return fail(tlsRequiredError(host, port));
        if (head.length < SNIFF_BYTES) head = Buffer.concat([head, chunk]).subarray(0, SNIFF_BYTES);
        const foreign = notImgcacheServer(host, port, head);
        if (foreign) return fail(foreign);
        let frames: Frame[];
        try {
          frames = reader.push(chunk);
        } catch (error) {
          return fail(error as Error);
        }
        const [first, ...rest] = frames;
        if (!first) return;
        cleanup();
        try {
          if (first.type === MessageType.REJECT) {
            socket.end();
            throw new RejectedError(parseReject(parseJsonBody(first.body)));
          }
          if (first.type !== MessageType.WELCOME)
            throw new MalformedMessageError('the first frame was neither WELCOME nor REJECT');
          resolve(new ImgcacheClient(socket, reader, parseWelcome(parseJsonBody(first.body)), rest));
        } catch (error) {
          socket.destroy();
          reject(error);
        }
      };
      const timer = setTimeout(
        () => fail(new ConnectionClosedError(`no answer from ${host}:${port} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      function cleanup() {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
      }
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.once(ready, () => {
        const hello = {
          versions: [...(options.versions ?? PROTOCOL_VERSIONS)],
          client: options.clientName ?? 'imgcache-client/0.1.0',
          ...(options.credential === undefined ? {} : { credential: options.credential }),
        };
        socket.write(encodeJsonFrame(MessageType.HELLO, hello));
      });
    });
  }

  get quota(): Quota {
    return this.#quota;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Why the session can take no more requests, or null while it can: a closing NOTICE ([P-33], as a
   * ConnectionClosedError that carries it), a fatal ERROR ([P-26]), or the connection lost. Set as soon as the server
   * said so, before the socket has closed.
   */
  get endReason(): Error | null {
    if (!this.#closed && this.#closedError === null && this.#closingNotice === null) return null;
    const cause = this.#closedError;
    return cause instanceof ServerError && this.#closingNotice === null ? cause : this.#closedReason();
  }

  /**
   * The whole catalog: [P-45] the server sends it in pages that each fit in a frame; this follows `next` until `more`
   * is false. The session and quota are those of the last page.
   */
  async list(): Promise<ListResult> {
    const images: ImageInfo[] = [];
    let after: string | undefined;
    for (;;) {
      const fields = { command: 'list', ...(after === undefined ? {} : { after }) };
      const { reply } = await this.#waitingIfRateLimited(() => this.#request(fields));
      const page = reply as unknown as ListResult & { more?: boolean; next?: string | null };
      images.push(...page.images);
      if (page.more !== true) return { images, session: page.session, quota: page.quota };
      if (typeof page.next !== 'string' || page.next === after) {
        throw new MalformedMessageError('a list REPLY with more images named no next one to ask after');
      }
      after = page.next;
    }
  }

  /**
   * [P-48] Runs a request again, after the hint, when the server answers that the session's budget of free requests
   * is spent (a long catalog in many pages, or revalidating many images, can do that); at most a few times, then the
   * refusal stands. [P-75] Requests were maybe pipelined: those sent before the refusal arrived are refused too, so
   * the retries, and every request asked for while any wait, go one at a time, each the hint after the answer to the
   * one before: not all together, which the budget would refuse again but one. The first request sent at once is
   * sent before this returns (call order is send order, [P-16]).
   */
  async #waitingIfRateLimited<T>(ask: () => Promise<T>): Promise<T> {
    // A request counts as waiting from its first paced turn until it is answered for good.
    let waiting = false;
    try {
      for (let attempt = 1; ; attempt++) {
        if (!waiting && (attempt > 1 || this.#pacedWaiting > 0)) {
          waiting = true;
          this.#pacedWaiting += 1;
        }
        try {
          return await (waiting ? this.#paced(ask) : ask());
        } catch (error) {
          const hint =
            error instanceof ServerError && error.code === 'rate-limited' ? error.body.retryAfterMs : undefined;
          if (hint === undefined || attempt >= 8) throw error;
          this.#retryAfterMs = hint;
        }
      }
    } finally {
      if (waiting) this.#pacedWaiting -= 1;
    }
  }

  /** [P-75] Sends `ask` once every paced request before it has been answered, and then the last hint later. */
  #paced<T>(ask: () => Promise<T>): Promise<T> {
    const turn = this.#pacedTail
      .then(() => new Promise((resolve) => setTimeout(resolve, this.#retryAfterMs)))
      .then(ask);
    this.#pacedTail = turn.catch(() => {});
    return turn;
  }

  /** Downloads an image into `sink`; resolves once END arrived and the length and SHA-256 matched [P-24]. */
  async getInto(image: string, sink: StreamSink): Promise<StreamResult> {
    const outcome = await this.getImage(image, sink);
    if (outcome.status !== 'ok') throw new MalformedMessageError('not-modified answers a get that had no have');
    return outcome;
  }

  /**
   * A `get`, conditional when `options.have` is given [P-34]: resolves with the image streamed into `sink` (END
   * checked, [P-24]), or with the not-modified REPLY [P-35], in which case `sink` received nothing.
   */
  async getImage(image: string, sink: StreamSink, options: GetOptions = {}): Promise<GetOutcome> {
    const have = options.have === undefined ? {} : { have: options.have };
    const fields = { command: 'get', image, ...have };
    // [P-48] a refused get sent nothing to the sink: asking again is safe
    const { reply, end } = await this.#waitingIfRateLimited(() => this.#request(fields, sink, options.onProgress));
    if (reply.status === 'not-modified') {
      const notModified = reply as NotModifiedReply;
      return { status: 'not-modified', reply: notModified, quota: notModified.quota };
    }
    return { status: 'ok', reply, end: end as StreamEnd, quota: reply.quota as Quota };
  }

  /** The usage document as text (platinum only, [P-22]), all of it or the part the filters select ([P-46]). */
  async usageText(filters: UsageFilters = {}): Promise<string> {
    const pieces: Buffer[] = [];
    const sink = { write: (piece: Buffer) => void pieces.push(piece) };
    await this.#waitingIfRateLimited(() => this.#request({ command: 'usage', ...filters }, sink));
    return Buffer.concat(pieces).toString('utf8');
  }

  async usage(): Promise<unknown> {
    return JSON.parse(await this.usageText());
  }

  /** [P-23] says goodbye; resolves when the server has acknowledged and closed. */
  async exit(): Promise<void> {
    await this.#request({ command: 'exit' });
    await this.#waitClosed();
  }

  /** Closes the connection without a goodbye [P-31]. */
  close(): void {
    this.#socket.destroy();
  }

  #waitClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.once('close', () => resolve()));
  }

  #request(fields: Record<string, unknown>, sink: StreamSink | null = null, onProgress?: ProgressListener) {
    return new Promise<{ reply: Record<string, unknown>; end: StreamEnd | null }>((resolve, reject) => {
      if (this.#closed || this.#closedError) return reject(this.#closedReason());
      const id = this.#nextId++;
      this.#pending.push({
        command: String(fields.command),
        sink,
        onProgress: onProgress ?? null,
        total: 0,
        resolve,
        reject,
        hash: null,
        received: 0,
        reply: null,
      });
      this.#send(encodeJsonFrame(MessageType.REQUEST, { id, ...fields }));
    });
  }

  /**
   * Writes a frame; the frames written in the same tick (pipelined requests [P-16], a receipt and the requests after
   * it) leave together, in one system call.
   */
  #send(frame: Buffer): void {
    if (this.#socket.writableCorked === 0) {
      this.#socket.cork();
      process.nextTick(() => this.#socket.uncork());
    }
    this.#socket.write(frame);
  }

  #onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#reader.push(chunk);
    } catch (error) {
      this.#closedError = error as Error;
      this.#socket.destroy();
      return;
    }
    for (const frame of frames) this.#onFrame(frame);
    this.#sendProgressReceipt();
  }

  /**
   * [P-40] [P-41] While a stream is read, a progress receipt at most every PROGRESS_RECEIPT_MS: a slow link is then
   * seen to make progress, and not cut at the drain deadline. A stream read within that time costs none.
   */
  #sendProgressReceipt(): void {
    const current = this.#pending[0];
    if (!current?.hash || !current.reply || this.#socket.destroyed) return;
    const now = performance.now();
    current.progressReportedAt ??= now;
    if (now - current.progressReportedAt < PROGRESS_RECEIPT_MS) return;
    current.progressReportedAt = now;
    this.#send(encodeJsonFrame(MessageType.RECEIVED, { id: current.reply.id, bytes: current.received }));
  }

  #onFrame(frame: Frame): void {
    try {
      this.#dispatch(frame);
    } catch (error) {
      this.#closedError = error as Error;
      this.#socket.destroy();
    }
  }

  #dispatch(frame: Frame): void {
    const current = this.#pending[0];
    switch (frame.type) {
      case MessageType.REPLY:
        this.#onReply(current, parseReply(parseJsonBody(frame.body)));
        return;
      case MessageType.ERROR:
        this.#onError(current, parseErrorBody(parseJsonBody(frame.body)));
        return;
      case MessageType.DATA:
        this.#onStreamData(current, frame.body);
        return;
      case MessageType.END:
        this.#onStreamEnd(current, parseStreamEnd(parseJsonBody(frame.body)));
        return;
      case MessageType.NOTICE: {
        // [P-29] [P-33] [P-70] Between answers. One that is not closing (catalog-changed, or a kind this library does
        // not know) changes nothing here, the request in flight included: it is only told to the 'notice' listeners.
        const notice = parseNotice(parseJsonBody(frame.body));
        if (notice.closing) this.#closingNotice = notice;
        return void this.emit('notice', notice);
      }
      default:
        throw new MalformedMessageError(`unexpected frame type 0x${frame.type.toString(16)} from the server`);
    }
  }

  #updateQuota(quota: unknown): void {
    if (!quota) return;
    this.#quota = quota as Quota;
    this.emit('quota', this.#quota);
  }

  #onReply(current: Pending | undefined, reply: Record<string, unknown>): void {
    if (!current || current.reply) throw new MalformedMessageError('a REPLY that answers no request');
    this.#updateQuota(reply.quota);
    if (reply.stream === true) {
      current.reply = reply;
      current.hash = createHash('sha256');
      current.total = typeof reply.bytes === 'number' ? reply.bytes : 0;
      return;
    }
    this.#pending.shift();
    current.resolve({ reply, end: null });
  }

  #onError(current: Pending | undefined, body: ReceivedErrorBody): void {
    this.#updateQuota(body.quota);
    const error = new ServerError(body);
    // [P-3] Answers come in the order of the requests, so an ERROR answers the oldest request unanswered, also one
    // with `id: null` that is not fatal: a request whose id the server could not read ([P-26] `bad-request`). Left
    // pending, every later answer would be taken for the request before it. A fatal one with `id: null` answers no
    // request: every request pending fails with it when the connection closes. One while no request is pending
    // answers nothing this client asked: no request is made after it.
    if (!current || (body.id === null && body.fatal)) {
      this.#closedError = error;
      return;
    }
    this.#pending.shift();
    current.reject(error);
    if (body.fatal) this.#closedError = error;
  }

  /** Why no more requests can be made: the connection closed, or the server said it is closing it. */
  #closedReason(): ConnectionClosedError {
    const cause = this.#closedError;
    const notice = this.#closingNotice;
    if (notice) return new ConnectionClosedError(`the server closed the connection: ${notice.message}`, { notice });
    if (cause instanceof ConnectionClosedError) return cause;
    const why = cause instanceof ServerError ? ` (${cause.body.code})` : cause ? ` (${cause.message})` : '';
    return new ConnectionClosedError(`the connection is closed${why}`);
  }

  #onStreamData(current: Pending | undefined, piece: Buffer): void {
    if (!current?.hash) throw new MalformedMessageError('a DATA frame outside a stream');
    current.hash.update(piece);
    current.received += piece.length;
    current.onProgress?.(current.received, current.total);
    const pending = current.sink?.write(piece);
    if (pending) {
      // Inbound backpressure: stop reading while a sink catches up; resume when every slow write is done.
      this.#slowWrites += 1;
      this.#socket.pause();
      pending.then(
        () => {
          this.#slowWrites -= 1;
          if (this.#slowWrites === 0) this.#socket.resume();
        },
        (error: Error) => {
          this.#closedError = error;
          this.#socket.destroy();
        },
      );
    }
  }

  #onStreamEnd(current: Pending | undefined, end: StreamEnd): void {
    if (!current?.hash || !current.reply) throw new MalformedMessageError('an END frame outside a stream');
    this.#pending.shift();
    // [P-40] The stream is read: say so, whatever its check gives, or the server cuts the connection at its drain
    // deadline.
    if (!this.#socket.destroyed) this.#send(encodeJsonFrame(MessageType.RECEIVED, { id: current.reply.id }));
    const digest = current.hash.digest('hex');
    if (end.bytes !== current.received || end.sha256 !== digest) {
      current.reject(new IntegrityError(end, { bytes: current.received, sha256: digest }));
      return;
    }
    // [P-56] An image's END must also be what its REPLY announced.
    const announced = current.reply;
    if (typeof announced.sha256 === 'string' && (announced.bytes !== end.bytes || announced.sha256 !== end.sha256)) {
      current.reject(new IntegrityError({ bytes: Number(announced.bytes), sha256: announced.sha256 }, end));
      return;
    }
    current.resolve({ reply: current.reply, end });
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closedError ??= error;
    // [P-26] [P-55] A fatal ERROR that answered no request (history-unavailable, too-many-requests, …) is why every
    // request still pending goes unanswered: they fail with the server's own code and message.
    const cause = this.#closedError;
    const reason = cause instanceof ServerError && cause.requestId === null ? cause : this.#closedReason();
    for (const pending of this.#pending.splice(0)) pending.reject(reason);
    this.emit('close', cause instanceof ConnectionClosedError ? null : cause);
  }
}
