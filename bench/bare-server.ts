/**
 * The bare baseline: what a Node TCP server can do with none of imgcache's work (no handshake, no session machine, no
 * quota, no history). It holds every image of a folder in memory and answers each length-prefixed request, a frame
 * of [P-2] shape whose body is an image name, with one DATA frame: the 5-byte header and the image written as two
 * buffers in one corked writev, the image never copied. An unknown name gets an empty ERROR frame (0x12).
 *
 * With `--history FILE` it is the baseline plus the one piece of imgcache's work that the design fixes per answer:
 * each answer waits for an `image-served` event of the same shape as imgcache's to be committed in a history of the
 * same schema, through the same group commit (db/event-log.ts), synced as `IMGCACHE_HISTORY_SYNC` says (as
 * imgcache's own `--history-sync`). What it serves is the ceiling that the history alone leaves imgcache.
 *
 * With `--session-machine` as well, it also does the other piece the design fixes per answer: every connection is a
 * session of imgcache's own machine (machines/session.machine.ts), admitted with a HELLO, and every answer is that
 * machine's steps, as imgcache takes them for a get: the REQUEST (which decides to serve it and counts it) before the
 * event is recorded, the REPLY_SENT once the answer is written. What it serves is the ceiling that the history and the
 * session machine together leave imgcache: everything else imgcache does (the protocol's JSON, the catalog, the
 * receipts and the rest of the socket glue) is its own cost.
 *
 *   node --import tsx bench/bare-server.ts --cache-dir DIR [--port 0] [--host 127.0.0.1] [--history FILE]
 *     [--session-machine]
 *
 * It runs with the V8 settings imgcache's server gives itself (src/v8-settings.ts). Prints `listening <port>` once it
 * listens; stops on SIGTERM or SIGINT.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Actor, createActor } from 'xstate';
import { EventLog } from '../db/event-log.ts';
import { openDatabase } from '../db/open-database.ts';
import { sessionMachine } from '../machines/session.machine.ts';
import { resolveConfig } from '../src/config.ts';
import { PROTOCOL_VERSIONS } from '../src/protocol/messages.ts';
import { applyServerV8Settings } from '../src/v8-settings.ts';
import { BENCH_QUOTA, BENCH_TIERS } from './bench-fixtures.ts';

const HEADER_BYTES = 5;
const DATA_TYPE = 0x20;
const ERROR_TYPE = 0x12;
/** requests are image names: a longer frame is a broken client */
const MAX_REQUEST_BYTES = 4096;

function header(type: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(HEADER_BYTES);
  bytes.writeUInt32BE(length, 0);
  bytes[4] = type;
  return bytes;
}

interface HeldImage {
  name: string;
  header: Buffer;
  content: Buffer;
  sha256: string;
}

function loadImages(folder: string): Map<string, HeldImage> {
  const images = new Map<string, HeldImage>();
  for (const name of readdirSync(folder)) {
    const file = path.join(folder, name);
    if (!statSync(file).isFile()) continue;
    const content = readFileSync(file);
    const sha256 = createHash('sha256').update(content).digest('hex');
    images.set(name, { name, header: header(DATA_TYPE, content.length), content, sha256 });
  }
  return images;
}

/** Writes an answer once its event is committed (with a history); the baseline writes it at once. */
type Answer = (socket: net.Socket, session: number, requestId: number, image: HeldImage | undefined) => void;

const NOT_FOUND = header(ERROR_TYPE, 0);

/** The DATA frame of `image`, or the empty ERROR frame of an unknown name; write()'s answer. */
function writeAnswer(socket: net.Socket, image: HeldImage | undefined): boolean {
  if (!image) return socket.write(NOT_FOUND);
  socket.write(image.header);
  return socket.write(image.content);
}

/** After its `image-served` event is committed, as imgcache answers: the event has imgcache's members and sizes. */
function answerAfterCommit(history: EventLog, machines: boolean): Answer {
  const sessionOf = machines ? sessionMachineOf() : null;
  return (socket, session, requestId, image) => {
    // The session decides first: an image it serves is counted, and the answer is in flight until written.
    const machine = sessionOf?.(socket, session, requestId, image);
    // An unknown name records nothing, but its answer keeps its place behind the answers still waiting.
    const events = image
      ? [
          {
            session,
            type: 'image-served' as const,
            data: {
              requestId,
              image: image.name,
              bytes: image.content.length,
              sha256: image.sha256,
              quotaUsed: requestId,
              quotaLimit: BENCH_QUOTA,
            },
          },
        ]
      : [];
    history.record(events, (error) => {
      if (error) {
        socket.destroy(error);
        return;
      }
      if (socket.destroyed) return;
      socket.cork();
      const wroteAll = writeAnswer(socket, image);
      socket.uncork();
      if (wroteAll) machine?.send({ type: 'REPLY_SENT', at: performance.now(), receiptPending: false });
      if (!wroteAll && !socket.isPaused()) {
        socket.pause();
        socket.once('drain', () => {
          machine?.send({ type: 'REPLY_SENT', at: performance.now(), receiptPending: false });
          socket.resume();
        });
      }
    });
  };
}

type SessionActor = Actor<typeof sessionMachine>;

/**
 * One session machine per connection, started and admitted (HELLO, then the WELCOME's REPLY_SENT) on its first
 * request; each request is then sent to it as imgcache's glue sends a get. Returns the session once it has been sent
 * the REQUEST, for its REPLY_SENT (an unknown name is answered without it, as the baseline answers it). The load
 * generator keeps one request in flight per connection, so a REQUEST never finds an answer in flight.
 */
function sessionMachineOf() {
  const sessions = new WeakMap<net.Socket, SessionActor>();
  const settings = { supportedVersions: PROTOCOL_VERSIONS, tiers: BENCH_TIERS };
  const timeouts = { handshakeTimeoutMs: 60_000, idleTimeoutMs: 3_600_000 };
  return (socket: net.Socket, connection: number, requestId: number, image: HeldImage | undefined) => {
    let session = sessions.get(socket);
    if (!session) {
      session = createActor(sessionMachine, { input: { connection, ...settings, ...timeouts } }).start();
      const identity = { name: `client-${connection}`, code: BENCH_TIERS[0]?.from ?? 100 };
      session.send({ type: 'HELLO', versions: [...PROTOCOL_VERSIONS], identity });
      session.send({ type: 'REPLY_SENT', at: performance.now(), receiptPending: false });
      sessions.set(socket, session);
      socket.once('close', () => session?.stop());
    }
    if (!image) return undefined;
    const request = { id: requestId, command: 'get' as const, image: image.name };
    session.send({ type: 'REQUEST', request, imageExists: true, imageUnchanged: false });
    return session;
  };
}

function serve(socket: net.Socket, session: number, images: Map<string, HeldImage>, answer: Answer | null): void {
  let requests = 0;
  let pending: Buffer = Buffer.alloc(0);
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    let bytes = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let wroteAll = true;
    socket.cork();
    while (bytes.length >= HEADER_BYTES) {
      const length = bytes.readUInt32BE(0);
      if (length > MAX_REQUEST_BYTES) {
        socket.destroy();
        return;
      }
      if (bytes.length < HEADER_BYTES + length) break;
      const image = images.get(bytes.toString('utf8', HEADER_BYTES, HEADER_BYTES + length));
      if (answer) answer(socket, session, ++requests, image);
      else wroteAll = writeAnswer(socket, image);
      bytes = bytes.subarray(HEADER_BYTES + length);
    }
    socket.uncork();
    pending = bytes.length === 0 ? pending.subarray(0, 0) : Buffer.from(bytes);
    if (!wroteAll) {
      socket.pause();
      socket.once('drain', () => socket.resume());
    }
  });
}

const { values } = parseArgs({
  options: {
    'cache-dir': { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    history: { type: 'string' },
    'session-machine': { type: 'boolean', default: false },
  },
});
const folder = values['cache-dir'];
if (!folder) {
  console.error('bare-server: --cache-dir is required');
  process.exit(2);
}
if (values['session-machine'] && !values.history) {
  console.error('bare-server: --session-machine goes with --history');
  process.exit(2);
}
// The V8 settings imgcache's server gives itself (src/v8-settings.ts), so that every reference runs as imgcache does.
applyServerV8Settings();
const images = loadImages(folder);
const historyFile = values.history;
const answer = historyFile
  ? answerAfterCommit(
      new EventLog(openDatabase(historyFile, { synchronous: resolveConfig({}, process.env).historySync })),
      values['session-machine'],
    )
  : null;
let sessions = 0;
const server = net.createServer((socket) => serve(socket, ++sessions, images, answer));
server.listen(Number(values.port), values.host, () => {
  console.log(`listening ${(server.address() as net.AddressInfo).port}`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
