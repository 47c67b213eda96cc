/**
 * The glue between one client's byte stream and its session actor. It decodes frames, turns them into session
 * events, and carries out what the session decides: it records the decision in the history and, once the history
 * has committed it, writes the answer. Bytes never go through the machine; the machine never touches the socket.
 *
 * Works on any Duplex (a TCP socket in production, an in-memory pair in tests).
 */
import type { Duplex } from 'node:stream';
import type { NewEvent } from '../../db/events.ts';
import type { SessionActorRef } from '../../machines/admission.types.ts';
import { sameQuota } from '../../machines/session.machine.ts';
import type { RequestEvent, SessionEffect } from '../../machines/session.types.ts';
import type { ImageReservation, SlotRefusal } from '../cluster/coordinator.ts';
import { BadRequestError, FrameTooLargeError, ImgcacheError, UnknownCommandError } from '../errors.ts';
import type { AccessDecision, QuotaWindow } from '../identity/access-control.ts';
import { encodeJsonTextFrame, type Frame, FrameDecoder } from '../protocol/frame.ts';
import {
  CLOSE_LINGER_MS,
  type ErrorCode,
  FATAL_ERROR_CODES,
  HELLO_MAX_BYTES,
  type Hello,
  MAX_PIPELINED_REQUESTS,
  MAX_UNANSWERED_REQUESTS,
  MessageType,
  type Occupancy,
  PROTOCOL_VERSIONS,
  type Reject,
  type Request,
  type UsageCommandRequest,
} from '../protocol/messages.ts';
import { parseHello, parseJsonBody, parseReceipt, parseRequestBody } from '../protocol/parse-message.ts';
import { holdsCurrentImage, notModifiedReply } from './conditional-get.ts';
import { ReceiptWatch } from './drain-watch.ts';
import { type BudgetState, costsNoQuota, fullBudget, spendFreeRequest } from './free-request-budget.ts';
import { closeGracefully } from './graceful-close.ts';
import type { CatalogEntry } from './image-catalog.ts';
import { suspiciousName } from './image-name.ts';
import { listPage } from './list-page.ts';
import { peerCloseReason } from './peer-close-reason.ts';
import { aggregateRepeat } from './repeated-answers.ts';
import { type ReplyWriter, writeErrorFrame, writeJsonFrame } from './reply-writer.ts';
import type { ServerContext } from './server-context.ts';
import { eventsForEffect, recordsFact, rejectionEvent } from './session-recorder.ts';
import { usageFilterOf } from './usage-filter.ts';

type QueueItem =
  | { kind: 'frame'; frame: Frame }
  /** [P-40] a RECEIVED: taken in order with the requests, but not one of them (no answer, not in the [P-16] limits) */
  | { kind: 'receipt'; frame: Frame }
  | { kind: 'error'; code: ErrorCode; message: string };

export class Connection {
  readonly number: number;
  readonly remote: string;
  readonly #address: string;
  readonly #stream: Duplex;
  readonly #server: ServerContext;
  readonly #decoder = new FrameDecoder({ maxBodyBytes: HELLO_MAX_BYTES });
  readonly #queue: QueueItem[] = [];
  readonly #writer: ReplyWriter;
  /** [P-40] [P-41] streams awaiting their RECEIVED, and the deadline of the oldest */
  readonly #receipts: ReceiptWatch;
  /** [P-40] RECEIVED frames in #queue (the rest of it are requests, counted by the [P-16] limits) */
  #queuedReceipts = 0;
  /** [P-42] the image being streamed, until its END is written and taken */
  #transfer: { requestId: number; image: CatalogEntry } | null = null;
  #session: SessionActorRef | null = null;
  #handshakeDone = false;
  /** whether a whole frame has come in yet (the first must be the HELLO [P-11]) */
  #firstFrameIn = false;
  #busy = false;
  #peerEnded = false;
  #inputStopped = false;
  #rejected = false;
  #finished = false;
  #image: CatalogEntry | undefined;
  /** whether the session's admission is on record: pending while its session-admitted is being committed */
  #admission: 'none' | 'pending' | 'on-record' | 'refused' = 'none';
  /** a close decided while the admission was being committed: its record depends on whether that commit succeeds */
  #closeAfterAdmission: SessionEffect | null = null;
  /** [P-52] what could be read of a request refused before it was parsed whole, for its record */
  #refused: { command?: string; image?: string } | undefined;
  /** [P-8] the HELLO's `client`, checked ([P-51]), for the admission's record */
  #client: string | undefined;
  /** the request being answered, for the fields the session machine does not carry (list paging, usage filters) */
  #request: Request | undefined;
  /** [P-48] this session's budget of requests that cost no quota (null until its first one) */
  #budget: BudgetState | null = null;
  /** [P-48] the retry hint of the request being refused as rate-limited */
  #retryAfterMs: number | undefined;
  /** [P-49] what the session's last row in the history is, when an identical answer may be recorded as its repeat */
  #lastRowKey: string | null = null;
  /** [P-60] the registered identity of a keyed session */
  #identity: string | undefined;
  /** [P-67] a keyed session whose tier may not read everyone's usage reads its own sessions' */
  #ownUsageOnly = false;
  /** [P-64] the window the keyed quota of the request being answered counts in */
  #quotaWindow: QuotaWindow | null = null;
  /** [P-64] the window the image being served was counted in, until its transfer ends whole */
  #countedWindow: QuotaWindow | null = null;
  /** [P-85] the window an image was reserved in across the cluster, until the session serves it (or not) */
  #reservedWindow: QuotaWindow | null = null;
  /** [P-70] a catalog-changed NOTICE owed to the client, sent between answers, at most one per interval */
  #catalogNoticeOwed = false;
  #catalogNoticeAt = Number.NEGATIVE_INFINITY;
  #catalogNoticeTimer: NodeJS.Timeout | null = null;
  #catalogNoticeAwaitsDrain = false;
  /** [P-55] the session's last frame is decided (a closing NOTICE, the reply to exit, a fatal ERROR): no other NOTICE */
  #lastFrameDecided = false;

  /**
   * `remote` is the peer as recorded (`address:port`); `address` is the peer's address alone, which the per-address
   * bounds count ([P-43] [P-63]).
   */
  constructor(stream: Duplex, number: number, remote: string, address: string, server: ServerContext) {
    this.#stream = stream;
    this.number = number;
    this.remote = remote;
    this.#address = address;
    this.#server = server;
    this.#receipts = new ReceiptWatch(stream, server.config.drainTimeoutMs, () => this.#abort('drain-timeout'));
    this.#writer = server.replyWriter(
      stream,
      (reason, error) => this.#abort(reason, error),
      () => this.#receipts.lastProgressAt,
    );
    stream.on('error', (error: NodeJS.ErrnoException) => this.#peerClosed(peerCloseReason(error)));
    stream.on('close', () => this.#peerClosed('client-closed'));
  }

  /** The admission actor gave this connection a slot and a session [P-9]. */
  admit(session: SessionActorRef): void {
    this.#session = session;
    session.on('*', (effect) => this.#onEffect(effect));
    this.#stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#stream.on('end', () => {
      this.#peerEnded = true;
      this.#processNext();
    });
  }

  /**
   * [P-70] The catalog changed: the client is told by a NOTICE catalog-changed, not closing, once the answer in
   * flight (if any) is written, and at most once per CATALOG_NOTICE_INTERVAL_MS: changes meanwhile are told by the
   * next one. It answers no request, is not recorded, and is not activity: the session's idle clock [P-27] is not
   * told of it.
   */
  catalogChanged(): void {
    if (!this.#handshakeDone || this.#finished || this.#lastFrameDecided) return;
    this.#catalogNoticeOwed = true;
    this.#sendCatalogNotice();
  }

  #sendCatalogNotice(): void {
    if (!this.#catalogNoticeOwed || this.#catalogNoticeTimer || this.#catalogNoticeAwaitsDrain) return;
    const stream = this.#stream;
    if (this.#finished || this.#lastFrameDecided || stream.destroyed || stream.writableEnded) return;
    if (this.#busy) return; // [P-29] never inside a stream, nor before an answer in flight: #answered sends it
    const wait = this.#catalogNoticeAt + CATALOG_NOTICE_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.#catalogNoticeTimer = setTimeout(() => {
        this.#catalogNoticeTimer = null;
        this.#sendCatalogNotice();
      }, wait);
      this.#catalogNoticeTimer.unref();
      return;
    }
    if (stream.writableNeedDrain) {
      // A client that does not read is owed one NOTICE, not a pile of them.
      this.#catalogNoticeAwaitsDrain = true;
      stream.once('drain', () => {
        this.#catalogNoticeAwaitsDrain = false;
        this.#sendCatalogNotice();
      });
      return;
    }
    this.#catalogNoticeOwed = false;
    this.#catalogNoticeAt = performance.now();
    writeJsonFrame(stream, MessageType.NOTICE, {
      kind: 'catalog-changed',
      message: noticeMessage('catalog-changed'),
      closing: false,
    });
  }

  /**
   * No slot: reject at once, before the HELLO arrives [P-9], and close gracefully [P-30]. A connection already in its
   * handshake (its session started) that gave its place to a newcomer [P-43] is rejected as a refused HELLO is: the
   * REJECT on record and written, then its session ends (no close record: the REJECT is its record) and closes it.
   */
  rejectAtCapacity(
    reason: 'server-full' | 'shutting-down' | 'too-many-handshakes',
    occupancy: Occupancy,
    retryAfterMs: number,
  ): void {
    const body: Reject =
      reason === 'shutting-down'
        ? { reason, message: 'the server is shutting down', occupancy } // [P-53] every REJECT has its occupancy
        : { reason, message: capacityMessage(reason, occupancy, retryAfterMs), occupancy, retryAfterMs };
    if (this.#session) {
      if (this.#finished) return; // already answered (or going): its session ends on its own
      this.#sendReject(body);
      this.#session.send({ type: 'PEER_CLOSED', reason });
      return;
    }
    this.#finished = true;
    const event = rejectionEvent(this.number, this.remote, reason, occupancy);
    const answer = () => {
      writeJsonFrame(this.#stream, MessageType.REJECT, body);
      closeGracefully(this.#stream, CLOSE_LINGER_MS);
    };
    this.#recordFact([event], answer);
  }

  #onData(chunk: Buffer): void {
    if (this.#finished || this.#inputStopped) return;
    try {
      for (const frame of this.#decoder.push(chunk)) if (!this.#enqueue(frame)) break;
    } catch (error) {
      // The stream cannot be re-synchronised after a framing error: stop reading, answer it in turn, close.
      // Whole frames that came before the bad header in the same chunk are answered first.
      if (error instanceof FrameTooLargeError) {
        for (const frame of error.framesBefore) if (!this.#enqueue(frame)) break;
      }
      this.#stopReading();
      this.#queue.push({ kind: 'error', code: errorCode(error, 'malformed-message'), message: errorMessage(error) });
    }
    const requests = this.#queue.length - this.#queuedReceipts;
    if (requests > MAX_UNANSWERED_REQUESTS) this.#overflow();
    else if (requests >= MAX_PIPELINED_REQUESTS) this.#stream.pause(); // [P-16]
    this.#processNext();
  }

  /**
   * [P-40] A RECEIVED, in its turn (every request before it is answered): the oldest stream awaiting one with its id
   * is delivered; null then (#processNext tells the session). One naming no stream that awaits a receipt is the
   * fatal `unexpected-message` (a body that is not a JSON object: `malformed-message`): that error then.
   */
  #takeReceipt(frame: Frame): QueueItem | null {
    try {
      const { id, bytes } = parseReceipt(frame.body);
      // [P-40] A progress receipt #takeProgress did not take as it arrived (its stream had not begun, or its key was
      // written with escapes): progress if its stream awaits a receipt now; it delivers nothing either way.
      if (bytes !== undefined) {
        const receipt = asProgressReceipt(id, bytes);
        if (!receipt) return { kind: 'error', code: 'unexpected-message', message: PROGRESS_RECEIPT_MALFORMED };
        const progress = this.#receipts.progress(receipt.id, receipt.bytes, this.#writer.dataBytesHanded);
        if (progress === 'taken') return null;
        const message = progress === 'beyond' ? PROGRESS_RECEIPT_BEYOND : RECEIPT_UNEXPECTED;
        return { kind: 'error', code: 'unexpected-message', message };
      }
      if (typeof id === 'number' && this.#receipts.receipt(id)) return null;
    } catch (error) {
      return { kind: 'error', code: errorCode(error, 'malformed-message'), message: errorMessage(error) };
    }
    return { kind: 'error', code: 'unexpected-message', message: RECEIPT_UNEXPECTED };
  }

  /**
   * Queues a whole frame to be answered in turn; false once nothing more may be read. [P-40] A RECEIVED is not a
   * request: it is taken in turn, but not counted in the [P-16] limits, and a progress receipt counts at once. More
   * of them waiting than requests can be answered are not all receipts of streams: the first one over is refused.
   * Only the first frame must be a HELLO [P-11]; a RECEIVED sent behind it, before the WELCOME was written, is a
   * RECEIVED like any other (judged once the WELCOME is out: no stream awaits it then).
   */
  #enqueue(frame: Frame): boolean {
    const first = !this.#firstFrameIn;
    this.#firstFrameIn = true;
    if (frame.type !== MessageType.RECEIVED || first) {
      this.#queue.push({ kind: 'frame', frame });
      return true;
    }
    if (this.#takeProgress(frame)) return true;
    if (this.#queuedReceipts >= MAX_UNANSWERED_REQUESTS) {
      this.#stopReading();
      this.#queue.push({ kind: 'error', code: 'unexpected-message', message: RECEIPT_UNEXPECTED });
      return false;
    }
    this.#queuedReceipts++;
    this.#queue.push({ kind: 'receipt', frame });
    return true;
  }

  /**
   * [P-40] [P-41] A progress receipt (`bytes` given) naming a stream that awaits its RECEIVED: progress for the drain
   * deadline, taken as it arrives (the stream it speaks of is being written, so the queue is not being read). Only a
   * body that mentions `bytes` is parsed here; anything else, and any progress receipt that is not right, is judged
   * in turn by #takeReceipt.
   */
  #takeProgress(frame: Frame): boolean {
    if (frame.body.indexOf('bytes') < 0) return false;
    try {
      const { id, bytes } = parseJsonBody(frame.body);
      const receipt = asProgressReceipt(id, bytes);
      return (
        receipt !== null && this.#receipts.progress(receipt.id, receipt.bytes, this.#writer.dataBytesHanded) === 'taken'
      );
    } catch {
      return false;
    }
  }

  /** After a framing error or an overflow nothing more the client sends is read; what came before is answered. */
  #stopReading(): void {
    this.#inputStopped = true;
    this.#stream.pause();
  }

  /** [P-16] More requests arrived at once than any client may have unanswered: answer the first ones, then close. */
  #overflow(): void {
    this.#stopReading();
    let requests = 0;
    const cut = this.#queue.findIndex((item) => item.kind !== 'receipt' && ++requests > MAX_UNANSWERED_REQUESTS);
    this.#queue.length = cut;
    this.#queuedReceipts = this.#queue.filter((item) => item.kind === 'receipt').length;
    const message = `more than ${MAX_UNANSWERED_REQUESTS} requests unanswered at once`;
    this.#queue.push({ kind: 'error', code: 'too-many-requests', message });
  }

  #processNext(): void {
    const session = this.#session;
    if (this.#busy || this.#finished || !session) return;
    let item = this.#queue.shift();
    let delivered = false;
    while (item?.kind === 'receipt') {
      this.#queuedReceipts--;
      const refused = this.#takeReceipt(item.frame);
      if (refused) {
        this.#stopReading();
        this.#queue.length = 0; // [P-40] fatal: nothing after it is answered
        this.#queuedReceipts = 0;
        item = refused;
        break;
      }
      delivered = true;
      item = this.#queue.shift();
    }
    if (!item) {
      // [P-27] [P-40] The receipts taken are told to the session once, as one DELIVERED: the idle clock counts from
      // now, unless a stream still awaits its RECEIVED. Receipts followed at once by a request are not told: that
      // request puts an answer in flight (or closes the session), and the REPLY_SENT that ends it sets the idle
      // clock and the receipts still awaited, as the DELIVERED would have: one machine step less per get.
      if (delivered) {
        session.send({ type: 'DELIVERED', at: performance.now(), receiptPending: this.#receipts.pending > 0 });
      }
      if (this.#peerEnded) session.send({ type: 'PEER_CLOSED', reason: 'client-closed' });
      return;
    }
    const requests = this.#queue.length - this.#queuedReceipts;
    if (requests < MAX_PIPELINED_REQUESTS && !this.#inputStopped) this.#stream.resume();
    this.#busy = true;
    if (!this.#handshakeDone) this.#handleHandshake(item, session);
    else this.#handleRequest(item, session);
  }

  #handleHandshake(item: QueueItem, session: SessionActorRef): void {
    if (item.kind === 'error' || item.frame.type !== MessageType.HELLO) {
      const reason = item.kind === 'error' && item.code === 'frame-too-large' ? 'frame-too-large' : 'bad-hello';
      const message = item.kind === 'error' ? item.message : 'the first frame must be a HELLO';
      this.#rejectHandshake(reason, message);
      return;
    }
    try {
      const body = parseJsonBody(item.frame.body);
      const hello = parseHello(body);
      // [P-43] The HELLO is in: only now does the connection take a session slot (unless it is to be turned away
      // for its versions [P-10], which the session decides).
      const speaks = hello.versions.some((version) => (PROTOCOL_VERSIONS as readonly number[]).includes(version));
      // [P-60] [P-86] A key this node has not heard of may have been registered a moment ago through another
      // connection: on a history the access control cannot read at once (PostgreSQL), it is looked up first.
      const known = !speaks || this.#server.access.knowsKeyOf(body.credential);
      const lookup = known ? null : this.#server.catchUpRegistry();
      if (!lookup) {
        this.#decideHello(body.credential, hello, speaks, session);
        return;
      }
      lookup.then(() => {
        if (!this.#finished && session.getSnapshot().status === 'active') {
          this.#decideHello(body.credential, hello, speaks, session);
        }
      });
    } catch (error) {
      this.#rejectHandshake('bad-hello', errorMessage(error));
    }
  }

  /**
   * [P-60] [P-62] [P-63] Who it is, before it takes a slot: a refused key takes none. The credential goes no further
   * than this check: it is in no record, log line or message.
   */
  #decideHello(credential: unknown, hello: Hello, speaks: boolean, session: SessionActorRef): void {
    const access = speaks
      ? this.#server.access.decide(credential, this.#address, performance.now())
      : ({ kind: 'open' } as const);
    if (access.kind === 'refused') {
      const { reason, message, identity, keyId, retryAfterMs } = access;
      this.#sendReject(
        { reason, message, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
        { identity, keyId },
      );
      session.send({ type: 'PEER_CLOSED', reason });
      return;
    }
    const keyed = access.kind === 'keyed' ? access.identity : undefined;
    const refusal = speaks ? this.#server.claimSlot(this.number, keyed) : null;
    if (refusal instanceof Promise) this.#awaitClusterSlot(refusal, hello, access, session);
    else this.#helloWithSlot(refusal, hello, access, session);
  }

  /**
   * [P-82] The cluster's answer to the HELLO's claim. Meanwhile the client may have gone, or its handshake timed
   * out: a slot granted then is given back. A cluster that cannot be asked refuses the session as a history that
   * cannot record it does: REJECT history-unavailable, on record.
   */
  #awaitClusterSlot(
    claim: Promise<SlotRefusal | null>,
    hello: Hello,
    access: AccessDecision,
    session: SessionActorRef,
  ): void {
    const gone = () => this.#finished || session.getSnapshot().status !== 'active';
    const keyed = access.kind === 'keyed' ? access.identity : undefined;
    claim
      .then(async (refusal) => {
        // [P-85] a keyed session's WELCOME tells its quota as the cluster counts it, not as this node last saw it
        if (!refusal && keyed !== undefined && !gone()) await this.#adoptClusterQuotaCount(keyed);
        return refusal;
      })
      .then(
        (refusal) => {
          if (!gone()) return this.#helloWithSlot(refusal, hello, access, session);
          if (!refusal) this.#server.cluster.releaseSlot(this.number);
        },
        (error: Error) => {
          this.#server.logHistoryFailure(error, this.number);
          // a slot granted is freed by the REJECT's record, or at once if the client is gone
          if (!gone()) this.#rejectHistoryUnavailable(session);
          else this.#server.cluster.releaseSlot(this.number);
        },
      );
  }

  /** [P-85] The node's count of the identity's images in its current window, from the cluster's. */
  async #adoptClusterQuotaCount(identity: string): Promise<void> {
    const current = this.#server.access.quotaOf(identity, this.#server.now());
    const used = current ? await this.#server.cluster.quotaUsed(current.window) : null;
    if (current && used !== null) this.#server.access.ledger.set(identity, current.window.start, used);
  }

  /** [P-43] [P-65] The HELLO's slot is decided: REJECT if refused, else the session is told its HELLO. */
  #helloWithSlot(refusal: SlotRefusal | null, hello: Hello, access: AccessDecision, session: SessionActorRef): void {
    const keyed = access.kind === 'keyed' ? access.identity : undefined;
    if (refusal) {
      const { reason, occupancy, retryAfterMs } = refusal;
      const message =
        reason === 'too-many-sessions'
          ? `${keyed} already holds the ${this.#server.config.maxSessionsPerIdentity} session(s) it may have at once`
          : capacityMessage('server-full', occupancy, retryAfterMs);
      this.#sendReject({ reason, message, occupancy, retryAfterMs }, { identity: keyed });
      session.send({ type: 'PEER_CLOSED', reason });
      return;
    }
    this.#client = hello.client;
    const identity = { name: `client-${this.number}`, code: this.#server.nextCode() };
    const grant = this.#server.access.grant(access, identity.name, identity.code, this.#server.now());
    this.#identity = keyed;
    this.#ownUsageOnly = grant?.identity.usageScope === 'own';
    session.send({ type: 'HELLO', versions: hello.versions, identity, ...(grant ? { grant } : {}) });
  }

  #rejectHandshake(reason: 'bad-hello' | 'frame-too-large', message: string): void {
    this.#sendReject({ reason, message });
    this.#session?.send({ type: 'PEER_CLOSED', reason });
  }

  #handleRequest(item: QueueItem, session: SessionActorRef): void {
    if (item.kind === 'receipt') return; // taken by #processNext
    if (item.kind === 'error') {
      session.send({ type: 'INVALID_REQUEST', requestId: null, code: item.code, message: item.message });
      return;
    }
    if (item.frame.type !== MessageType.REQUEST) {
      const message = `a client may not send a frame of type 0x${item.frame.type.toString(16)} here`;
      session.send({ type: 'INVALID_REQUEST', requestId: null, code: 'unexpected-message', message });
      return;
    }
    this.#adoptKeyedQuota(session);
    try {
      const request = parseRequestBody(item.frame.body);
      this.#request = request;
      this.#image = request.command === 'get' ? this.#server.catalog.get(request.image) : undefined;
      const imageUnchanged = holdsCurrentImage(request, this.#image); // [P-34]
      const imageExists = this.#image !== undefined;
      const free = costsNoQuota(request.command, imageExists, imageUnchanged);
      const overBudget = free && !this.#spendFreeRequest();
      const event: RequestEvent = {
        type: 'REQUEST',
        request,
        imageExists,
        imageUnchanged,
        ...(overBudget ? { overBudget } : {}),
      };
      // [P-85] a keyed get that costs quota reserves its image across the cluster first (alone: no reservation)
      const window = free ? null : this.#quotaWindow;
      const reservation = window ? this.#server.cluster.reserveImage(window) : null;
      if (reservation && window) this.#requestWithReservation(reservation, window, event, session);
      else session.send(event);
    } catch (error) {
      const requestId =
        error instanceof ImgcacheError && 'requestId' in error ? (error.requestId as number | null) : null;
      this.#refused = readableRequest(error); // [P-52]
      const code = errorCode(error, 'bad-request');
      // [P-48] a refusal that is not fatal costs no quota: it draws on the budget too
      if (!FATAL_ERROR_CODES.has(code) && !this.#spendFreeRequest()) {
        const message = 'too many requests that cost no quota; slow down';
        session.send({ type: 'INVALID_REQUEST', requestId, code: 'rate-limited', message });
        return;
      }
      session.send({ type: 'INVALID_REQUEST', requestId, code, message: errorMessage(error) });
    }
  }

  #onEffect(effect: SessionEffect): void {
    if (isLastFrame(effect)) this.#lastFrameDecided = true; // [P-70] no catalog-changed after it
    if (effect.type === 'reject') {
      this.#sendReject(this.#rejectBody(effect));
      return;
    }
    if (effect.type === 'closed' && this.#admission === 'pending') {
      this.#closeAfterAdmission = effect;
      return;
    }
    if (effect.type === 'welcome') this.#admission = 'pending';
    // [P-64] The image counts toward the identity's quota now, so that its other sessions see it at once.
    if (effect.type === 'serve-image' && this.#quotaWindow) this.#countImage(this.#quotaWindow);
    const events = eventsForEffect(effect, {
      connection: this.number,
      remote: this.remote,
      image: this.#image,
      rejected: this.#rejected,
      admittedOnRecord: this.#admission === 'on-record',
      refused: this.#refused,
      client: this.#client,
      suspicious:
        effect.type === 'refuse' && effect.code === 'image-not-found' && effect.image !== undefined
          ? suspiciousName(effect.image, this.#server.catalog.names())
          : null,
    });
    if (recordsFact(effect)) this.#recordFact(events, () => this.#carryOut(effect));
    else this.#record(events, () => this.#carryOut(effect));
  }

  /**
   * Records facts (a close, a rejection: they happened whatever the history says). `then` runs after the first
   * attempt to commit them, whatever it gave: facts that could not be committed yet are kept by the history and
   * committed, in order, when it is back (logged and announced then, by the server).
   */
  #recordFact(events: NewEvent[], then: () => void): void {
    this.#lastRowKey = null; // [P-49] the session's last row is now this fact
    this.#server.history.recordFact(events, (error) => {
      if (!error) this.#server.logEvents(events);
      then();
    });
  }

  /**
   * Records the events of an answer; runs `then` (which sends it) only after they are committed: no reply before
   * its event. If they cannot be, the answer is not sent and the events are discarded (they did not happen).
   */
  #record(answerEvents: NewEvent[], then: () => void): void {
    // [P-49] the same answer as the session's last row is recorded as a repeat of that row, not as a row of its own
    const aggregated = aggregateRepeat(answerEvents, this.#lastRowKey);
    const events = [...aggregated.events];
    if (events.length > 0) this.#lastRowKey = aggregated.key;
    this.#server.history.record(events, (error) => {
      if (error) this.#lastRowKey = null;
      const admission = this.#admission === 'pending' && events.some((event) => event.type === 'session-admitted');
      if (admission) this.#admission = error ? 'refused' : 'on-record';
      try {
        if (!error) {
          this.#server.logEvents(events);
          then();
          return;
        }
        this.#server.logHistoryFailure(error, this.number);
        this.#historyFailed(events);
      } finally {
        if (admission) this.#afterAdmission();
      }
    });
  }

  /** The admission's commit is settled: a close decided meanwhile can now be recorded for what it is. */
  #afterAdmission(): void {
    const close = this.#closeAfterAdmission;
    this.#closeAfterAdmission = null;
    if (close) this.#onEffect(close);
  }

  /**
   * [P-64] A keyed session's quota as it stands before a request: its identity's, over all its sessions, in the
   * current window (the period may have turned, the tier changed, another session used some).
   */
  #adoptKeyedQuota(session: SessionActorRef): void {
    this.#quotaWindow = null;
    if (this.#identity === undefined) return;
    const current = this.#server.access.quotaOf(this.#identity, this.#server.now());
    if (!current) return;
    this.#quotaWindow = current.window;
    // Most often the quota is the one the session already has (its own last get counted, nothing else changed): a
    // QUOTA then changes nothing, and a step of the session machine costs more than the rest of a get's decision.
    if (sameQuota(session.getSnapshot().context.quota, current.quota)) return;
    session.send({ type: 'QUOTA', quota: current.quota });
  }

  /**
   * [P-85] In a cluster a keyed get that costs quota first reserves its image across the nodes; the session then
   * decides on the identity's count as the cluster has it: served if reserved, quota-exhausted if not. A reservation
   * the session does not spend on a serve-image is given back at once. A cluster that cannot be asked refuses the
   * request as a history that cannot record it does (history-unavailable).
   */
  #requestWithReservation(
    reservation: Promise<ImageReservation>,
    window: QuotaWindow,
    event: RequestEvent,
    session: SessionActorRef,
  ): void {
    reservation.then(
      ({ reserved, used }) => {
        if (this.#finished || session.getSnapshot().status !== 'active') {
          if (reserved) this.#server.cluster.giveBackImage(window);
          return;
        }
        this.#server.access.ledger.set(window.identity, window.start, reserved ? used - 1 : used);
        this.#adoptKeyedQuota(session);
        this.#reservedWindow = reserved ? window : null;
        session.send(event);
        if (this.#reservedWindow) this.#server.cluster.giveBackImage(this.#reservedWindow);
        this.#reservedWindow = null;
      },
      (error: Error) => {
        this.#server.logHistoryFailure(error, this.number);
        // [P-85] Nothing was counted (the session never had the request): its quota stands as it was.
        if (!this.#finished) session.send({ type: 'HISTORY_FAILED' });
      },
    );
  }

  #countImage(window: QuotaWindow): void {
    this.#server.access.ledger.add(window.identity, window.start, 1);
    this.#countedWindow = window;
    this.#reservedWindow = null; // [P-85] the reservation is spent on this image
  }

  /** [P-42] [P-64] The image counted did not go out whole (or not at all): the identity gets it back. */
  #uncountImage(): void {
    const window = this.#countedWindow;
    this.#countedWindow = null;
    if (!window) return;
    this.#server.access.ledger.add(window.identity, window.start, -1);
    this.#server.cluster.giveBackImage(window); // [P-85]
  }

  /** The history could not record what this connection did: refuse to go on (never serve what is not on record). */
  #historyFailed(events: NewEvent[]): void {
    if (events.some((event) => event.type === 'image-served')) this.#uncountImage();
    const session = this.#session;
    if (!session || this.#finished || session.getSnapshot().status !== 'active') {
      // A close is waiting for the admission's outcome: it records the connection's end and closes it.
      if (this.#closeAfterAdmission) return;
      // Nothing left to answer: just close.
      this.#finished = true;
      this.#server.forget(this);
      closeGracefully(this.#stream, CLOSE_LINGER_MS);
      return;
    }
    if (!this.#handshakeDone) {
      this.#rejectHistoryUnavailable(session);
      return;
    }
    session.send({ type: 'HISTORY_FAILED', imageNotServed: events.some((event) => event.type === 'image-served') });
  }

  /**
   * [P-9] The first frame is a WELCOME or a REJECT: an admission that cannot be recorded (or, in a cluster, whose
   * slot cannot be claimed [P-82]) is a REJECT. The session was never on record as admitted, so it gets no close
   * record: its REJECT is recorded, as a fact, instead.
   */
  #rejectHistoryUnavailable(session: SessionActorRef): void {
    this.#finished = true;
    this.#rejected = true;
    const message = 'the server cannot record new sessions in its history right now; try again later';
    // [P-53] Without the slot this connection took at its HELLO: the rejected connection itself is not counted.
    const { open, capacity } = this.#server.occupancy();
    const occupancy = { open: Math.max(0, open - 1), capacity };
    const event = rejectionEvent(this.number, this.remote, 'history-unavailable', occupancy);
    this.#recordFact([event], () =>
      writeJsonFrame(this.#stream, MessageType.REJECT, { reason: 'history-unavailable', message, occupancy }),
    );
    session.send({ type: 'PEER_CLOSED', reason: 'history-unavailable' });
  }

  #carryOut(effect: SessionEffect): void {
    const stream = this.#stream;
    switch (effect.type) {
      case 'welcome':
        this.#handshakeDone = true;
        this.#decoder.setMaxBodyBytes(this.#server.config.maxRequestBytes);
        writeJsonFrame(stream, MessageType.WELCOME, {
          version: effect.version,
          server: this.#server.serverName,
          session: effect.identity,
          quota: effect.quota,
          limits: this.#server.limits,
        });
        this.#answered();
        return;
      case 'reject':
        return; // recorded and written by #onEffect, in one step
      case 'serve-list': {
        // [P-45] one page, never over maxFrameBytes
        const request = this.#request?.command === 'list' ? this.#request : undefined;
        const page = listPage(
          { requestId: effect.requestId, after: request?.after, limit: request?.limit },
          {
            images: this.#server.catalog.list(),
            session: effect.identity,
            quota: effect.quota,
            maxFrameBytes: this.#server.config.maxFrameBytes,
          },
        );
        if (!stream.destroyed && !stream.writableEnded) stream.write(encodeJsonTextFrame(MessageType.REPLY, page.json));
        this.#answered();
        return;
      }
      case 'serve-image': {
        const image = this.#image;
        if (!image) return;
        this.#receipts.expect(effect.requestId);
        this.#transfer = { requestId: effect.requestId, image };
        this.#writer.image(effect.requestId, image, effect.quota, () => {
          this.#transfer = null; // [P-42] its END is written: the image counts
          this.#countedWindow = null;
          this.#receipts.ended(this.#writer.dataBytesHanded);
          this.#answered();
        });
        return;
      }
      case 'serve-not-modified': {
        const image = this.#image;
        if (!image) return;
        writeJsonFrame(stream, MessageType.REPLY, notModifiedReply(effect.requestId, image, effect.quota)); // [P-35]
        this.#answered();
        return;
      }
      case 'serve-usage':
        this.#receipts.expect(effect.requestId);
        this.#writer.usage(effect.requestId, effect.quota, this.#usageFilter(), () => {
          this.#receipts.ended(this.#writer.dataBytesHanded);
          this.#answered();
        });
        return;
      case 'acknowledge-exit':
        writeJsonFrame(stream, MessageType.REPLY, {
          id: effect.requestId,
          command: 'exit',
          status: 'ok',
          quota: effect.quota,
        });
        return;
      case 'refuse':
        writeErrorFrame(stream, {
          id: effect.requestId,
          code: effect.code,
          message: boundedMessage(effect.message), // [P-47] an echoed name cannot push the frame over the limit
          fatal: effect.fatal,
          quota: effect.quota,
          ...(effect.code === 'rate-limited' ? { retryAfterMs: this.#retryAfterMs ?? 1 } : {}), // [P-48]
        });
        if (!effect.fatal) this.#answered();
        return;
      case 'notice':
        writeJsonFrame(stream, MessageType.NOTICE, {
          kind: effect.kind,
          message: noticeMessage(effect.kind),
          closing: true,
        });
        return;
      case 'closed':
        this.#finished = true;
        if (this.#catalogNoticeTimer) clearTimeout(this.#catalogNoticeTimer);
        this.#server.forget(this);
        closeGracefully(stream, CLOSE_LINGER_MS);
        return;
    }
  }

  #rejectBody(effect: Extract<SessionEffect, { type: 'reject' }>): Reject {
    if (effect.reason === 'unsupported-version') {
      const supported = 'supported' in effect ? [...effect.supported] : [];
      return {
        reason: effect.reason,
        message: `this server speaks protocol versions ${supported.join(', ')}`,
        supported,
      };
    }
    return { reason: effect.reason, message: rejectMessage(effect.reason, this.#server.config.handshakeTimeoutMs) };
  }

  /** `claimed`: [P-62] the name and key id a refused key claimed, for the record (never the key). */
  #sendReject(body: Reject, claimed?: { identity?: string | undefined; keyId?: string | undefined }): void {
    this.#finished = true;
    this.#rejected = true;
    // [P-53] Every REJECT carries the occupancy it was decided at, the same as its record: the cluster's, when the
    // cluster refused the slot [P-82].
    const occupancy = body.occupancy ?? this.#server.occupancy();
    const event = rejectionEvent(this.number, this.remote, body.reason, occupancy, body.supported, claimed);
    this.#recordFact([event], () => writeJsonFrame(this.#stream, MessageType.REJECT, { ...body, occupancy }));
  }

  /** [P-46] [P-67] The filter of the usage being answered: the request's, and only its own sessions for a keyed client. */
  #usageFilter() {
    const filter = usageFilterOf(this.#usageRequest());
    if (!this.#ownUsageOnly || this.#identity === undefined) return filter;
    return { ...filter, identity: this.#identity };
  }

  /** [P-46] The usage request being answered, with its filters. */
  #usageRequest(): UsageCommandRequest | undefined {
    return this.#request?.command === 'usage' ? this.#request : undefined;
  }

  /** [P-48] Takes one free request from the session's budget; false (and the retry hint set) when there is none. */
  #spendFreeRequest(): boolean {
    const options = {
      burst: this.#server.config.freeRequestBurst,
      perSecond: this.#server.config.freeRequestsPerSecond,
    };
    const now = performance.now();
    const decision = spendFreeRequest(this.#budget ?? fullBudget(options, now), options, now);
    this.#budget = decision.state;
    this.#retryAfterMs = decision.allowed ? undefined : decision.retryAfterMs;
    return decision.allowed;
  }

  /** The answer in flight is written (the socket took it); the session may idle again and the next request run. */
  #answered(): void {
    this.#busy = false;
    this.#image = undefined;
    this.#refused = undefined;
    this.#sendCatalogNotice(); // [P-70] owed while the answer was in flight: after it, before the next one
    // [P-27] `at` on the monotonic clock, which the session's timers (real setTimeout) also follow. While a stream
    // awaits its RECEIVED the session is not idle [P-40].
    this.#session?.send({ type: 'REPLY_SENT', at: performance.now(), receiptPending: this.#receipts.pending > 0 });
    this.#processNext();
  }

  #peerClosed(reason: string): void {
    if (this.#finished) return;
    this.#transferIncomplete(reason);
    this.#session?.send({ type: 'PEER_CLOSED', reason });
  }

  /**
   * [P-42] The image being streamed stops before its END was written (the reader stalled or went away, the server
   * is stopping, the file changed): it did not happen whole, and the history says how far it got, before the close.
   */
  #transferIncomplete(reason: string): void {
    const transfer = this.#transfer;
    if (!transfer) return;
    this.#transfer = null;
    const { requestId, image } = transfer;
    this.#uncountImage();
    const bytesSent = Math.min(this.#writer.dataBytesTaken, image.bytes);
    const data = { requestId, image: image.name, bytes: image.bytes, bytesSent, reason };
    this.#recordFact([{ session: this.number, type: 'transfer-incomplete', data }], () => {});
  }

  /** An answer cannot be finished: record why, and drop the connection (no graceful close: the peer is not reading). */
  #abort(reason: string, error?: Error): void {
    if (error) this.#server.logConnectionError(error, this.number, reason);
    this.#peerClosed(reason);
    this.#stream.destroy();
  }

  /** Server shutdown, after the grace period: drop the connection whatever it is doing. */
  destroy(reason = 'shutdown-deadline'): void {
    this.#abort(reason);
  }
}

const RECEIPT_UNEXPECTED = 'a RECEIVED naming no stream that awaits one';
const PROGRESS_RECEIPT_MALFORMED = "a progress receipt's id must be a request id and its bytes a non-negative integer";
const PROGRESS_RECEIPT_BEYOND = 'a progress receipt said more bytes were read than the server has sent';

/** [P-70] At most one catalog-changed NOTICE per session in this many ms. */
export const CATALOG_NOTICE_INTERVAL_MS = 1000;

/** [P-55] Effects that write, or lead to, the connection's last frame. */
function isLastFrame(effect: SessionEffect): boolean {
  return (
    effect.type === 'notice' ||
    effect.type === 'closed' ||
    effect.type === 'acknowledge-exit' ||
    effect.type === 'reject' ||
    (effect.type === 'refuse' && effect.fatal)
  );
}

/**
 * [P-47] An ERROR's message echoes what the client sent (a name, a command), which may be as long as its request
 * frame: it is cut to 256 code points, so that even escaped (6 bytes a character at worst) the ERROR fits within the
 * smallest maxFrameBytes (4096).
 */
export const ERROR_MESSAGE_MAX_CHARS = 256;

function boundedMessage(message: string): string {
  if (message.length <= ERROR_MESSAGE_MAX_CHARS) return message;
  const points = Array.from(message);
  if (points.length <= ERROR_MESSAGE_MAX_CHARS) return message;
  return `${points.slice(0, ERROR_MESSAGE_MAX_CHARS - 1).join('')}…`;
}

/** [P-40] A progress receipt's members, when they are one: a numeric id and a count of bytes read, an integer >= 0. */
function asProgressReceipt(id: unknown, bytes: unknown): { id: number; bytes: number } | null {
  const valid = typeof id === 'number' && typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes >= 0;
  return valid ? { id, bytes } : null;
}

/** [P-52] The command and image of a request that could not be parsed whole, as far as they could be read. */
function readableRequest(error: unknown): { command?: string; image?: string } | undefined {
  if (error instanceof BadRequestError) return error.request;
  if (error instanceof UnknownCommandError) return { command: error.command };
  return undefined;
}

function errorCode(error: unknown, fallback: ErrorCode): ErrorCode {
  if (error instanceof ImgcacheError) {
    if (error.code === 'truncated-frame') return 'malformed-message';
    return error.code as ErrorCode;
  }
  return fallback;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** [P-13] [P-43] [P-44] */
function capacityMessage(
  reason: 'server-full' | 'too-many-handshakes',
  occupancy: Occupancy,
  retryAfterMs: number,
): string {
  if (reason === 'too-many-handshakes') return 'too many connections are in their handshake; try again later';
  const full = `the server is at capacity (${occupancy.open}/${occupancy.capacity} sessions)`;
  return retryAfterMs === 0 ? `${full}; an idle session was closed for you, try again now` : `${full}; try again later`;
}

function rejectMessage(reason: string, handshakeTimeoutMs: number): string {
  if (reason === 'handshake-timeout') return `no HELLO within ${handshakeTimeoutMs} ms`;
  if (reason === 'shutting-down') return 'the server is shutting down';
  return reason;
}

function noticeMessage(kind: string): string {
  if (kind === 'idle-timeout') return 'closing the connection: no request for too long';
  if (kind === 'shutting-down') return 'the server is shutting down';
  if (kind === 'revoked') return 'your key was revoked by the operator'; // [P-66]
  if (kind === 'catalog-changed') return 'the catalog changed; list it again to see how'; // [P-70]
  return kind;
}
