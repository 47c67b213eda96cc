/**
 * What a server must answer to a given byte sequence, worked out from docs/PROTOCOL.md with the reference decoder
 * and the protocol parsers (the glue is what the server fuzz tests, not the parsers): the first frame for bytes sent
 * before the handshake, and the answer to every frame for bytes sent after the WELCOME.
 */
import { ProtocolError } from '../../src/errors.ts';
import {
  type Frame,
  HELLO_MAX_BYTES,
  MessageType,
  parseHello,
  parseJsonBody,
  parseRequest,
} from '../../src/protocol/index.ts';
import { referenceDecode } from './frame-fuzz.ts';
import type { Answer, FirstFrame } from './server-answers.ts';

/** What the session under test may do: its limits, its quota, its rights, and the catalog. */
export interface SessionRules {
  maxRequestBytes: number;
  quotaLimit: number;
  canReadUsage: boolean;
  images: ReadonlySet<string>;
  /** versions the server speaks [P-10] */
  versions: readonly number[];
}

/** [P-3] [P-9] [P-10] [P-11] The first frame a server sends for `bytes` sent right after connecting. */
export function expectedFirstFrame(bytes: Buffer, rules: SessionRules): FirstFrame {
  const { frames, outcome } = referenceDecode(bytes, () => HELLO_MAX_BYTES);
  const first = frames[0];
  if (!first) return outcome.kind === 'too-large' ? { kind: 'reject', reason: 'frame-too-large' } : { kind: 'closed' };
  if (first.type !== MessageType.HELLO) return { kind: 'reject', reason: 'bad-hello' };
  let versions: number[];
  try {
    versions = parseHello(parseJsonBody(first.body)).versions;
  } catch {
    return { kind: 'reject', reason: 'bad-hello' };
  }
  const common = versions.some((version) => rules.versions.includes(version));
  return common ? { kind: 'welcome' } : { kind: 'reject', reason: 'unsupported-version' };
}

/** [P-3] [P-4] [P-5] [P-15] to [P-26] The answers to `bytes` sent after the WELCOME, up to the first closing one. */
export function expectedAnswers(bytes: Buffer, rules: SessionRules): Answer[] {
  const { frames, outcome } = referenceDecode(bytes, () => rules.maxRequestBytes);
  const answers: Answer[] = [];
  const quota = { served: 0 };
  const streams: number[] = [];
  for (const frame of frames) {
    // [P-40] A RECEIVED is no request: unanswered when it names a stream that awaits one, else fatal.
    const answer = frame.type === MessageType.RECEIVED ? receiptAnswer(frame, streams) : answerTo(frame, rules, quota);
    if (answer === null) continue;
    if (answer.kind === 'reply' && (answer.command === 'usage' || answer.command === 'get')) streams.push(answer.id);
    answers.push(answer);
    if (isClosing(answer)) return answers;
  }
  if (outcome.kind === 'too-large') answers.push(fatal('frame-too-large'));
  return answers;
}

/** [P-23] [P-26] Whether the server closes the connection after this answer. */
export function isClosing(answer: Answer): boolean {
  return answer.kind === 'error' ? answer.fatal : answer.command === 'exit';
}

function fatal(code: string, id: number | null = null): Answer {
  return { kind: 'error', id, code, fatal: true };
}

/** [P-40] null when the RECEIVED names a stream awaiting one (taken off `streams`), else its fatal ERROR. */
function receiptAnswer(frame: Frame, streams: number[]): Answer | null {
  let body: Record<string, unknown>;
  try {
    body = parseJsonBody(frame.body);
  } catch {
    return fatal('malformed-message');
  }
  const index = typeof body.id === 'number' ? streams.indexOf(body.id) : -1;
  if (body.bytes !== undefined) {
    // a progress receipt: delivers nothing; fine while its stream awaits a receipt and `bytes` is a count
    const count = body.bytes;
    const isCount = typeof count === 'number' && Number.isSafeInteger(count) && count >= 0;
    return index >= 0 && isCount ? null : fatal('unexpected-message');
  }
  if (index < 0) return fatal('unexpected-message');
  streams.splice(index, 1);
  return null;
}

function answerTo(frame: Frame, rules: SessionRules, quota: { served: number }): Answer {
  if (frame.type !== MessageType.REQUEST) return fatal('unexpected-message');
  let body: Record<string, unknown>;
  try {
    body = parseJsonBody(frame.body);
  } catch {
    return fatal('malformed-message');
  }
  let request: ReturnType<typeof parseRequest>;
  try {
    request = parseRequest(body);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { kind: 'error', id: error.requestId, code: error.code, fatal: error.fatal };
  }
  const { id } = request;
  switch (request.command) {
    case 'list':
    case 'exit':
      return { kind: 'reply', id, command: request.command, status: 'ok' };
    case 'usage':
      return rules.canReadUsage
        ? { kind: 'reply', id, command: 'usage', status: 'ok' }
        : { kind: 'error', id, code: 'usage-forbidden', fatal: false };
    case 'get':
      // [P-21] a missing image costs nothing, also once the quota is used up
      if (!rules.images.has(request.image)) return { kind: 'error', id, code: 'image-not-found', fatal: false };
      if (quota.served >= rules.quotaLimit) return fatal('quota-exhausted', id);
      quota.served += 1;
      return { kind: 'reply', id, command: 'get', status: 'ok' };
  }
}
