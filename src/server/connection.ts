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
import type { SessionEffect } from '../../machines/session.types.ts';
import { FrameTooLargeError, ImgcacheError } from '../errors.ts';
import { type Frame, FrameDecoder } from '../protocol/frame.ts';
import {
  CLOSE_LINGER_MS,
  type ErrorCode,
  HELLO_MAX_BYTES,
  MAX_PIPELINED_REQUESTS,
  MessageType,
  type Occupancy,
  type Reject,
} from '../protocol/messages.ts';
import { parseHello, parseJsonBody, parseRequest } from '../protocol/parse-message.ts';
import { closeGracefully } from './graceful-close.ts';
import type { CatalogEntry } from './image-catalog.ts';
import { type ReplyWriter, writeErrorFrame, writeJsonFrame } from './reply-writer.ts';
import type { ServerContext } from './server-context.ts';
import { eventsForEffect, rejectionEvent } from './session-recorder.ts';

type QueueItem = { kind: 'frame'; frame: Frame } | { kind: 'error'; code: ErrorCode; message: string };

export class Connection {
  readonly number: number;
  readonly remote: string;
  readonly #stream: Duplex;
  readonly #server: ServerContext;
  readonly #decoder = new FrameDecoder({ maxBodyBytes: HELLO_MAX_BYTES });
  readonly #queue: QueueItem[] = [];
  readonly #writer: ReplyWriter;
  #session: SessionActorRef | null = null;
  #handshakeDone = false;
  #busy = false;
  #peerEnded = false;
  #finished = false;
  #image: CatalogEntry | undefined;

  constructor(stream: Duplex, number: number, remote: string, server: ServerContext) {
    this.#stream = stream;
    this.number = number;
    this.remote = remote;
    this.#server = server;
    this.#writer = server.replyWriter(stream);
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

  /** No slot: reject at once, before the HELLO arrives [P-9], and close gracefully [P-30]. */
  rejectAtCapacity(reason: 'server-full' | 'shutting-down', occupancy: Occupancy, retryAfterMs: number): void {
    const body: Reject =
      reason === 'server-full'
        ? {
            reason,
            message: `the server is at capacity (${occupancy.open}/${occupancy.capacity} sessions); try again later`,
            occupancy,
            retryAfterMs,
          }
        : { reason, message: 'the server is shutting down' };
    this.#finished = true;
    this.#record([rejectionEvent(this.number, this.remote, reason, occupancy)], () => {
      writeJsonFrame(this.#stream, MessageType.REJECT, body);
      closeGracefully(this.#stream, CLOSE_LINGER_MS);
    });
  }

  #onData(chunk: Buffer): void {
    if (this.#finished) return;
    try {
      for (const frame of this.#decoder.push(chunk)) this.#queue.push({ kind: 'frame', frame });
    } catch (error) {
      // The stream cannot be re-synchronised after a framing error: stop reading, answer it in turn, close.
      // Whole frames that came before the bad header in the same chunk are answered first.
      if (error instanceof FrameTooLargeError) {
        for (const frame of error.framesBefore) this.#queue.push({ kind: 'frame', frame });
      }
      this.#stream.pause();
      this.#queue.push({ kind: 'error', code: errorCode(error, 'malformed-message'), message: errorMessage(error) });
    }
    if (this.#queue.length >= MAX_PIPELINED_REQUESTS) this.#stream.pause(); // [P-16]
    this.#processNext();
  }

  #processNext(): void {
    const session = this.#session;
    if (this.#busy || this.#finished || !session) return;
    const item = this.#queue.shift();
    if (!item) {
      if (this.#peerEnded) session.send({ type: 'PEER_CLOSED', reason: 'client-closed' });
      return;
    }
    if (this.#queue.length < MAX_PIPELINED_REQUESTS && !this.#stream.destroyed) this.#stream.resume();
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
      const hello = parseHello(parseJsonBody(item.frame.body));
      const identity = { name: `client-${this.number}`, code: this.#server.nextCode() };
      session.send({ type: 'HELLO', versions: hello.versions, identity });
    } catch (error) {
      this.#rejectHandshake('bad-hello', errorMessage(error));
    }
  }

  #rejectHandshake(reason: 'bad-hello' | 'frame-too-large', message: string): void {
    this.#sendReject({ reason, message });
    this.#session?.send({ type: 'PEER_CLOSED', reason });
  }

  #handleRequest(item: QueueItem, session: SessionActorRef): void {
    if (item.kind === 'error') {
      session.send({ type: 'INVALID_REQUEST', requestId: null, code: item.code, message: item.message });
      return;
    }
    if (item.frame.type !== MessageType.REQUEST) {
      const message = `a client may not send a frame of type 0x${item.frame.type.toString(16)} here`;
      session.send({ type: 'INVALID_REQUEST', requestId: null, code: 'unexpected-message', message });
      return;
    }
    try {
      const request = parseRequest(parseJsonBody(item.frame.body));
      this.#image = request.command === 'get' ? this.#server.catalog.get(request.image) : undefined;
      session.send({ type: 'REQUEST', request, imageExists: this.#image !== undefined });
    } catch (error) {
      const requestId =
        error instanceof ImgcacheError && 'requestId' in error ? (error.requestId as number | null) : null;
      session.send({
        type: 'INVALID_REQUEST',
        requestId,
        code: errorCode(error, 'bad-request'),
        message: errorMessage(error),
      });
    }
  }

  #onEffect(effect: SessionEffect): void {
    if (effect.type === 'reject') {
      this.#sendReject(this.#rejectBody(effect));
      return;
    }
    const events = eventsForEffect(effect, { connection: this.number, remote: this.remote, image: this.#image });
    this.#record(events, () => this.#carryOut(effect));
  }

  /** Records events; runs `then` only after they are committed [P-x: no reply before its event]. */
  #record(events: NewEvent[], then: () => void): void {
    this.#server.history.record(events, (error) => {
      if (!error) {
        this.#server.logEvents(events);
        then();
        return;
      }
      this.#server.logHistoryFailure(error, this.number);
      if (this.#session && !this.#finished) this.#session.send({ type: 'HISTORY_FAILED' });
      else closeGracefully(this.#stream, CLOSE_LINGER_MS);
    });
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
      case 'serve-list':
        writeJsonFrame(stream, MessageType.REPLY, {
          id: effect.requestId,
          command: 'list',
          status: 'ok',
          images: this.#server.catalog.list(),
          session: effect.identity,
          quota: effect.quota,
        });
        this.#answered();
        return;
      case 'serve-image': {
        const image = this.#image;
        if (!image) return;
        this.#writer.image(effect.requestId, image, effect.quota, () => this.#answered());
        return;
      }
      case 'serve-usage':
        this.#writer.usage(effect.requestId, effect.quota, () => this.#answered());
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
          message: effect.message,
          fatal: effect.fatal,
          quota: effect.quota,
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

  #sendReject(body: Reject): void {
    this.#finished = true;
    const occupancy = this.#server.occupancy();
    this.#record([rejectionEvent(this.number, this.remote, body.reason, occupancy, body.supported)], () => {
      writeJsonFrame(this.#stream, MessageType.REJECT, body);
    });
  }

  /** The answer in flight is written (the socket took it); the session may idle again and the next request run. */
  #answered(): void {
    this.#busy = false;
    this.#image = undefined;
    this.#session?.send({ type: 'REPLY_SENT' });
    this.#processNext();
  }

  #peerClosed(reason: string): void {
    if (this.#finished) return;
    this.#session?.send({ type: 'PEER_CLOSED', reason });
  }

  /** Server shutdown, after the grace period: drop the socket whatever it is doing. */
  destroy(): void {
    this.#stream.destroy();
  }
}

function peerCloseReason(error: NodeJS.ErrnoException): string {
  return error.code === 'ECONNRESET' ? 'connection-reset' : `socket-error:${error.code ?? 'unknown'}`;
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

function rejectMessage(reason: string, handshakeTimeoutMs: number): string {
  if (reason === 'handshake-timeout') return `no HELLO within ${handshakeTimeoutMs} ms`;
  if (reason === 'shutting-down') return 'the server is shutting down';
  return reason;
}

function noticeMessage(kind: string): string {
  if (kind === 'idle-timeout') return 'closing the connection: no request for too long';
  if (kind === 'shutting-down') return 'the server is shutting down';
  return kind;
}
