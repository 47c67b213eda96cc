/**
 * Every failure imgcache reports, one class per failure, each with a stable `code` (tests and callers compare codes,
 * never messages, which are for people and may change).
 *
 * - Protocol errors a receiver detects in what its peer sent ([P-3], [P-4], [P-5], [P-15]) extend `ProtocolError`:
 *   their `code` is the wire error code of [P-26], `fatal` says whether the connection closes after the ERROR, and
 *   `requestId` is the `id` the ERROR answers (`null` when it answers no request).
 * - `BadHelloError` maps to REJECT `bad-hello` ([P-11]) rather than to an ERROR.
 * - The client-side errors (`RejectedError`, `ServerError`, `ConnectionClosedError`, `IntegrityError`) describe what
 *   happened to a connection or a request, as seen by the client library.
 */
import type { Frame } from './protocol/frame.ts';
import type { ErrorCode, ReceivedErrorBody, ReceivedNotice, ReceivedReject } from './protocol/messages.ts';

/** The base of every imgcache error: an `Error` with a stable machine-readable `code`. */
export class ImgcacheError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A violation of the protocol by the peer that a server answers with an ERROR frame ([P-26]). */
export abstract class ProtocolError extends ImgcacheError {
  declare readonly code: ErrorCode;
  /** [P-26] Whether the connection is closed after the ERROR. */
  readonly fatal: boolean;
  /** [P-26] The `id` of the ERROR: the request it answers, or `null` for an error that answers no request. */
  readonly requestId: number | null;

  constructor(code: ErrorCode, message: string, fatal: boolean, requestId: number | null, options?: ErrorOptions) {
    super(code, message, options);
    this.fatal = fatal;
    this.requestId = requestId;
  }
}

/**
 * [P-3] A frame header declared a body longer than the receiver's current limit. Fatal; before the handshake the
 * server answers it with REJECT `frame-too-large` instead of an ERROR.
 */
export class FrameTooLargeError extends ProtocolError {
  /** The body length the header declared. */
  readonly declaredLength: number;
  /** The limit it exceeded. */
  readonly limit: number;
  /**
   * Whole frames that the same chunk completed before the offending header, in order (usually none). A receiver
   * may handle them before it refuses the connection, so that the outcome does not depend on how TCP cut the bytes.
   */
  readonly framesBefore: readonly Frame[];

  constructor(declaredLength: number, limit: number, framesBefore: readonly Frame[] = []) {
    super('frame-too-large', `a frame declared ${declaredLength} body bytes, over the limit of ${limit}`, true, null);
    this.declaredLength = declaredLength;
    this.limit = limit;
    this.framesBefore = framesBefore;
  }
}

/** [P-2] The input ended in the middle of a frame (a header or a body cut short). */
export class TruncatedFrameError extends ImgcacheError {
  /** Bytes of the unfinished frame that had arrived (header bytes included). */
  readonly receivedBytes: number;
  /** Bytes the whole frame needed (header included), or `null` when the header itself was cut short. */
  readonly expectedBytes: number | null;

  constructor(receivedBytes: number, expectedBytes: number | null) {
    const expected = expectedBytes === null ? 'a 5-byte header' : `${expectedBytes} bytes`;
    super('truncated-frame', `the input ended inside a frame: ${receivedBytes} bytes of ${expected}`);
    this.receivedBytes = receivedBytes;
    this.expectedBytes = expectedBytes;
  }
}

/** [P-5] A JSON body that is not valid UTF-8, not valid JSON, not an object, or whose fields break the spec. Fatal. */
export class MalformedMessageError extends ProtocolError {
  constructor(message: string, options?: ErrorOptions) {
    super('malformed-message', message, true, null, options);
  }
}

/** [P-4] A frame of a type the receiver does not know, or that the sender may not send at this point. Fatal. */
export class UnexpectedMessageError extends ProtocolError {
  /** The frame's type byte. */
  readonly messageType: number;

  constructor(messageType: number, message = `unexpected message type 0x${hex2(messageType)}`) {
    super('unexpected-message', message, true, null);
    this.messageType = messageType;
  }
}

/** [P-11] The HELLO's `versions` is missing or malformed; answered with REJECT `bad-hello`. */
export class BadHelloError extends ImgcacheError {
  constructor(message: string) {
    super('bad-hello', message);
  }
}

/**
 * [P-15] [P-26] A request field is missing or of the wrong type. Not fatal. `requestId` is `null` when the `id`
 * itself is missing or invalid.
 */
export class BadRequestError extends ProtocolError {
  /** What could be read of the refused request, for the record: its `command` and a `get`'s `image`, when strings. */
  readonly request: { command?: string; image?: string };

  constructor(requestId: number | null, message: string, request: { command?: string; image?: string } = {}) {
    super('bad-request', message, false, requestId);
    this.request = request;
  }
}

/** [P-15] [P-26] `command` is a string but not one of the commands. Not fatal. */
export class UnknownCommandError extends ProtocolError {
  declare readonly requestId: number;
  /** The command as the client sent it. */
  readonly command: string;

  constructor(requestId: number, command: string) {
    super('unknown-command', `unknown command ${JSON.stringify(command)}`, false, requestId);
    this.command = command;
  }
}

/**
 * [P-39] Server side: the file behind a catalog entry is no longer the one that was catalogued (replaced, turned into
 * a link, grown, shrunk, rewritten, removed), found while serving it from disk. The stream is cut before its END.
 */
export class ImageChangedError extends ImgcacheError {
  declare readonly code: 'image-changed';
  /** The image's name in the catalog. */
  readonly image: string;
  /** What differs: `link`, `not-a-file`, `gone`, `device`, `inode`, `size`, `mtime`, `shorter` or `sha256`. */
  readonly difference: string;

  constructor(image: string, difference: string, options?: ErrorOptions) {
    super(
      'image-changed',
      `the file of image ${JSON.stringify(image)} changed since it was catalogued (${difference})`,
      options,
    );
    this.image = image;
    this.difference = difference;
  }
}

/** [P-39] Server side: the file of a catalogued image could not be read (an I/O error); the stream is cut. */
export class ImageReadFailedError extends ImgcacheError {
  declare readonly code: 'image-read-failed';
  readonly image: string;

  constructor(image: string, cause: Error) {
    super('image-read-failed', `the file of image ${JSON.stringify(image)} could not be read: ${cause.message}`, {
      cause,
    });
    this.image = image;
  }
}

/** [P-13] [P-14] Client side: the server answered the HELLO with a REJECT; the connection is finished. */
export class RejectedError extends ImgcacheError {
  /** The parsed REJECT body; `reject.reason` is the machine-readable reason. */
  readonly reject: ReceivedReject;

  constructor(reject: ReceivedReject) {
    super('rejected', `the server rejected the connection (${reject.reason}): ${reject.message}`);
    this.reject = reject;
  }
}

/**
 * [P-26] Client side: the server answered with an ERROR. `code` is the wire code, verbatim (an unknown code is kept,
 * [P-33]); `fatal` is the wire `fatal`, and when it is true the connection is finished.
 */
export class ServerError extends ImgcacheError {
  readonly body: ReceivedErrorBody;
  readonly fatal: boolean;
  readonly requestId: number | null;

  constructor(body: ReceivedErrorBody) {
    super(body.code, `the server answered ${body.code}: ${body.message}`);
    this.body = body;
    this.fatal = body.fatal;
    this.requestId = body.id;
  }
}

/**
 * Client side: the connection closed (or was closed) before the awaited answer arrived. `notice` is set when the
 * server said why with a closing NOTICE ([P-27], [P-28]).
 */
export class ConnectionClosedError extends ImgcacheError {
  readonly notice: ReceivedNotice | null;

  constructor(message = 'the connection is closed', options?: ErrorOptions & { notice?: ReceivedNotice }) {
    super('connection-closed', message, options);
    this.notice = options?.notice ?? null;
  }
}

/** [P-69] Why a TLS connection was refused by the client, or could not be made. */
export type TlsFailureCode =
  /** the certificate is not signed by a CA the client trusts (a self-signed one, without --tls-ca) */
  | 'tls-untrusted-certificate'
  /** the certificate is valid but names other hosts than the one connected to */
  | 'tls-host-mismatch'
  /** the certificate is expired or not yet valid */
  | 'tls-certificate-dates'
  /** the server answered in plain text: it does not speak TLS on this port */
  | 'tls-not-spoken'
  /** a plain-text client was answered with a TLS record: the server speaks TLS on this port */
  | 'tls-required'
  /** any other failure of the TLS handshake */
  | 'tls-handshake-failed';

/** [P-69] Client side: the TLS handshake failed; the client refused the server, or the server does not speak TLS. */
export class TlsError extends ImgcacheError {
  declare readonly code: TlsFailureCode;

  constructor(code: TlsFailureCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** What a stream carried, or was announced to carry ([P-24]). */
export interface StreamDigest {
  bytes: number;
  sha256: string;
}

/** [P-24] Client side: a stream's content does not match the length or SHA-256 announced for it; it is discarded. */
export class IntegrityError extends ImgcacheError {
  readonly expected: StreamDigest;
  readonly actual: StreamDigest;

  constructor(expected: StreamDigest, actual: StreamDigest) {
    super(
      'integrity-mismatch',
      `stream content does not match: expected ${expected.bytes} bytes sha256 ${expected.sha256}, ` +
        `got ${actual.bytes} bytes sha256 ${actual.sha256}`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
