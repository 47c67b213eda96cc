/**
 * The cost of admission end to end: against a real imgcache process (capacity raised with --capacity), opens
 * `sessions` connections in batches of `batch`, each sending its HELLO at once, and times each batch until all of its
 * WELCOMEs are in (an admission includes the session-admitted event committed before the WELCOME). Every session
 * stays open until the end. Reads the server's resident memory before and after, for the memory of an open session
 * with its socket, glue and machines. First `warmUpSessions` sessions are opened and closed, so that the batches at
 * 100 open are not the server's JIT warm-up: the server's capacity must leave room for them.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeJsonFrame, MessageType } from '../src/protocol/index.ts';
import type { AdmissionBatch } from './admission-in-process.ts';
import { FrameSkipper } from './frame-skipper.ts';
import { cpuTimeMs, rssBytes } from './proc-stats.ts';
import type { ServerProcess } from './server-processes.ts';

export interface SocketAdmission {
  sessions: number;
  totalSeconds: number;
  batches: AdmissionBatch[];
  /** growth of the server's resident memory per open session, bytes */
  serverRssBytesPerSession: number;
  serverCpuMicrosecondsPerSession: number;
}

const BATCH_DEADLINE_MS = 30_000;

export async function measureAdmissionOverSockets(
  server: ServerProcess,
  sessions: number,
  batchSize: number,
  warmUpSessions: number,
): Promise<SocketAdmission> {
  const hello = encodeJsonFrame(MessageType.HELLO, { versions: [1], client: 'imgcache-bench/1' });
  for (let opened = 0; opened < warmUpSessions; opened += batchSize) {
    const batch = Array.from({ length: Math.min(batchSize, warmUpSessions - opened) }, () =>
      net.connect({ host: '127.0.0.1', port: server.port, noDelay: true }),
    );
    try {
      await withDeadline(Promise.all(batch.map((socket) => welcomed(socket, hello))), BATCH_DEADLINE_MS, 'warm-up');
    } finally {
      for (const socket of batch) socket.destroy();
    }
  }
  const sockets: net.Socket[] = [];
  const batches: AdmissionBatch[] = [];
  const rssBefore = rssBytes(server.pid);
  const cpuBefore = cpuTimeMs(server.pid);
  const startedAt = performance.now();
  try {
    while (sockets.length < sessions) {
      const openBefore = sockets.length;
      const count = Math.min(batchSize, sessions - openBefore);
      const batchStart = performance.now();
      const welcomes = Array.from({ length: count }, () => {
        const socket = net.connect({ host: '127.0.0.1', port: server.port, noDelay: true });
        sockets.push(socket);
        return welcomed(socket, hello);
      });
      await withDeadline(Promise.all(welcomes), BATCH_DEADLINE_MS, `batch at ${openBefore} open`);
      batches.push({ openBefore, microsecondsPerSession: ((performance.now() - batchStart) * 1000) / count });
    }
    const totalSeconds = (performance.now() - startedAt) / 1000;
    return {
      sessions,
      totalSeconds,
      batches,
      serverRssBytesPerSession: (rssBytes(server.pid) - rssBefore) / sessions,
      serverCpuMicrosecondsPerSession: ((cpuTimeMs(server.pid) - cpuBefore) * 1000) / sessions,
    };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

/** Sends the HELLO on connect; resolves on the WELCOME, fails on anything else. */
function welcomed(socket: net.Socket, hello: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const skipper = new FrameSkipper(
      (type, _length, body) => {
        if (type === MessageType.WELCOME) resolve();
        else reject(new Error(`expected a WELCOME, got type 0x${type.toString(16)}: ${body?.toString() ?? ''}`));
      },
      [MessageType.REJECT, MessageType.ERROR, MessageType.NOTICE],
    );
    socket.on('connect', () => socket.write(hello));
    socket.on('data', (chunk: Buffer) => skipper.push(chunk, 0, chunk.length));
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed before the WELCOME')));
  });
}

async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
