/**
 * Reads what a server sends on one connection until it closes, and checks it against the wire grammar as it goes:
 * a first frame that is a WELCOME or a documented REJECT ([P-9], [P-13]); then answers that parse with the client's
 * own parsers, streams of DATA then one END whose length and SHA-256 match ([P-24]), documented error codes only
 * ([P-26]), and nothing after a closing frame ([P-14], [P-26], [P-30]). Anything else is a PropertyViolation.
 */
import { createHash } from 'node:crypto';
import {
  ERROR_CODES,
  type Frame,
  MessageType,
  parseErrorBody,
  parseJsonBody,
  parseReject,
  parseReply,
  parseStreamEnd,
  parseWelcome,
} from '../../src/protocol/index.ts';
import type { RawConnection } from '../helpers/raw-connection.ts';
import { describeValue, PropertyViolation } from './run-cases.ts';

/** [P-13] The reasons a version 1 server gives. */
export const REJECT_REASONS = [
  'server-full',
  'unsupported-version',
  'bad-hello',
  'handshake-timeout',
  'frame-too-large',
  'shutting-down',
] as const;

/** Error codes a healthy server never has a reason to send to a fuzzer: a bug, or a history that failed. */
const NEVER_EXPECTED = new Set(['internal-error', 'history-unavailable']);

export type FirstFrame = { kind: 'welcome' } | { kind: 'reject'; reason: string } | { kind: 'closed' };

export type Answer =
  | { kind: 'reply'; id: number; command: string; status: string }
  | { kind: 'error'; id: number | null; code: string; fatal: boolean };

/** The SHA-256 of each image of the catalog, by name, to check what a `get` streamed. */
export type CatalogDigests = ReadonlyMap<string, string>;

/** Gives up when the server neither answers nor closes: a hang is a failure too, never a reason to wait forever. */
async function nextFrame(peer: RawConnection, input: string, deadlineMs: number): Promise<Frame | null> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PropertyViolation(`the server neither sent a frame nor closed within ${deadlineMs} ms`, input)),
      deadlineMs,
    );
  });
  try {
    return await Promise.race([peer.next(), hang]);
  } finally {
    clearTimeout(timer);
  }
}

function parsed<T>(what: string, frame: Frame, parse: (body: Record<string, unknown>) => T, input: string): T {
  try {
    return parse(parseJsonBody(frame.body));
  } catch (error) {
    throw new PropertyViolation(`the server sent an invalid ${what}: ${String(error)}`, input);
  }
}

/** [P-9] [P-13] [P-14] The server's first frame: a WELCOME, a REJECT (then the close), or the close itself. */
export async function readFirstFrame(peer: RawConnection, input: string, deadlineMs: number): Promise<FirstFrame> {
  const frame = await nextFrame(peer, input, deadlineMs);
  if (frame === null) return { kind: 'closed' };
  if (frame.type === MessageType.WELCOME) {
    parsed('WELCOME', frame, parseWelcome, input);
    return { kind: 'welcome' };
  }
  if (frame.type !== MessageType.REJECT) {
    throw new PropertyViolation(`[P-9] the first frame has type 0x${frame.type.toString(16)}`, input);
  }
  const reject = parsed('REJECT', frame, parseReject, input);
  if (!(REJECT_REASONS as readonly string[]).includes(reject.reason)) {
    throw new PropertyViolation(`[P-13] undocumented REJECT reason ${reject.reason}`, input);
  }
  await expectClosed(peer, 'a REJECT', input, deadlineMs);
  return { kind: 'reject', reason: reject.reason };
}

/** [P-14] [P-26] [P-30] Nothing may follow a closing frame but the close. */
async function expectClosed(peer: RawConnection, after: string, input: string, deadlineMs: number): Promise<void> {
  const frame = await nextFrame(peer, input, deadlineMs);
  if (frame !== null) {
    throw new PropertyViolation(`a frame of type 0x${frame.type.toString(16)} followed ${after}`, input);
  }
}

/**
 * Every answer until the server closes, each checked ([P-16] to [P-26]); a stream's content is checked against its
 * END, and a `get` stream against the catalog's SHA-256 of the image.
 */
export async function readAnswers(
  peer: RawConnection,
  digests: CatalogDigests,
  input: string,
  deadlineMs: number,
): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (;;) {
    const frame = await nextFrame(peer, input, deadlineMs);
    if (frame === null) return answers;
    if (frame.type === MessageType.REPLY) {
      const reply = parsed('REPLY', frame, parseReply, input) as unknown as Record<string, unknown>;
      if (reply.stream === true) await readStream(peer, reply, digests, input, deadlineMs);
      answers.push({
        kind: 'reply',
        id: Number(reply.id),
        command: String(reply.command),
        status: String(reply.status),
      });
      if (reply.command === 'exit') {
        await expectClosed(peer, 'the reply to exit', input, deadlineMs);
        return answers;
      }
      continue;
    }
    if (frame.type === MessageType.ERROR) {
      const error = parsed('ERROR', frame, parseErrorBody, input);
      if (!(ERROR_CODES as readonly string[]).includes(error.code) || NEVER_EXPECTED.has(error.code)) {
        throw new PropertyViolation(`[P-26] the server answered ${describeValue(error)}`, input);
      }
      answers.push({ kind: 'error', id: error.id, code: error.code, fatal: error.fatal });
      if (error.fatal) {
        await expectClosed(peer, `a fatal ${error.code}`, input, deadlineMs);
        return answers;
      }
      continue;
    }
    // [P-29] [P-70] a NOTICE that does not close (catalog-changed) may come between any two answers.
    if (frame.type === MessageType.NOTICE && parseJsonBody(frame.body).closing === false) continue;
    const what =
      frame.type === MessageType.NOTICE ? `a NOTICE ${frame.body.toString()}` : `type 0x${frame.type.toString(16)}`;
    throw new PropertyViolation(`[P-4] the server sent ${what} between answers`, input);
  }
}

/** [P-24] DATA frames, then one END whose length and SHA-256 match the content (and the catalog, for an image). */
async function readStream(
  peer: RawConnection,
  reply: Record<string, unknown>,
  digests: CatalogDigests,
  input: string,
  deadlineMs: number,
): Promise<void> {
  const hash = createHash('sha256');
  let bytes = 0;
  for (;;) {
    const frame = await nextFrame(peer, input, deadlineMs);
    if (frame === null) throw new PropertyViolation('[P-24] the server closed inside a stream', input);
    if (frame.type === MessageType.DATA) {
      hash.update(frame.body);
      bytes += frame.body.length;
      continue;
    }
    if (frame.type !== MessageType.END) {
      throw new PropertyViolation(`[P-24] a frame of type 0x${frame.type.toString(16)} inside a stream`, input);
    }
    const end = parsed('END', frame, parseStreamEnd, input);
    const digest = hash.digest('hex');
    if (end.bytes !== bytes || end.sha256 !== digest) {
      throw new PropertyViolation(
        `[P-24] END says ${describeValue(end)}, the stream was ${bytes} bytes ${digest}`,
        input,
      );
    }
    if (reply.command === 'get' && (digests.get(String(reply.image)) !== digest || reply.sha256 !== digest)) {
      throw new PropertyViolation(`[P-19] the stream of ${String(reply.image)} is not that image`, input);
    }
    // [P-40] A client says it has read the stream. The fuzzer's input may have closed its side: then it cannot.
    if (!peer.socket.writableEnded && !peer.socket.destroyed) peer.received(Number(reply.id));
    return;
  }
}
