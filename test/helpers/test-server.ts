/**
 * Starts a real server for a test: 127.0.0.1, port 0, a real SQLite file in a fresh temporary folder, the sample
 * images of cache/ unless told otherwise. `stop()` closes the server and removes the folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NewEvent } from '../../db/events.ts';
import { PACKAGE_ROOT, type ServerConfig } from '../../src/config.ts';
import { sequenceOfCodes } from '../../src/server/code-source.ts';
import { type ImgcacheServer, startServer } from '../../src/server/server.ts';
import { cleanUpOnExit } from './cleanup-on-exit.ts';

export const SAMPLE_IMAGES = path.join(PACKAGE_ROOT, 'cache');

export interface TestServer {
  server: ImgcacheServer;
  /** every history event committed so far, in order */
  events: NewEvent[];
  /** resolves with the first committed event (past, or future) that matches */
  waitForEvent(matches: (event: NewEvent) => boolean): Promise<NewEvent>;
  /** resolves with the first event committed from now on that matches */
  waitForNextEvent(matches: (event: NewEvent) => boolean): Promise<NewEvent>;
  port: number;
  folder: string;
  database: string;
  stop(): Promise<void>;
}

/**
 * The history events a server commits, as its `onRecorded` hook hands them over, and promises for the ones a test
 * waits for (no polling, no sleep).
 */
export interface RecordedEvents {
  /** every history event committed so far, in order */
  events: NewEvent[];
  /** the server's onRecorded hook */
  onRecorded(recorded: readonly NewEvent[]): void;
  /** resolves with the first committed event (past, or future) that matches */
  waitForEvent(matches: (event: NewEvent) => boolean): Promise<NewEvent>;
  /** resolves with the first event committed from now on that matches */
  waitForNextEvent(matches: (event: NewEvent) => boolean): Promise<NewEvent>;
}

export function recordedEvents(): RecordedEvents {
  const events: NewEvent[] = [];
  const waiters: Array<{ matches: (event: NewEvent) => boolean; resolve: (event: NewEvent) => void }> = [];
  return {
    events,
    onRecorded: (recorded) => {
      events.push(...recorded);
      for (const event of recorded) {
        for (const waiter of waiters.filter((candidate) => candidate.matches(event))) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      }
    },
    waitForEvent: (matches) => {
      const seen = events.find(matches);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ matches, resolve }));
    },
    waitForNextEvent: (matches) => new Promise((resolve) => waiters.push({ matches, resolve })),
  };
}

/** A new folder under the system's temporary folder, removed with all it holds when the test process ends. */
export function makeTemporaryFolder(prefix = 'imgcache-test-'): string {
  const folder = mkdtempSync(path.join(tmpdir(), prefix));
  cleanUpOnExit(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

export async function startTestServer(
  options: Partial<ServerConfig> & { codes?: number[]; folder?: string } = {},
): Promise<TestServer> {
  const folder = options.folder ?? makeTemporaryFolder();
  const database = options.database ?? path.join(folder, 'history.sqlite');
  const { events, onRecorded, waitForEvent, waitForNextEvent } = recordedEvents();
  const server = await startServer(
    { host: '127.0.0.1', port: 0, cacheDir: SAMPLE_IMAGES, ...options, database },
    { codeSource: sequenceOfCodes(options.codes ?? [108]), onRecorded },
  );
  return {
    server,
    events,
    waitForEvent,
    waitForNextEvent,
    port: server.address.port,
    folder,
    database,
    stop: async () => {
      await server.close();
      if (!options.folder) rmSync(folder, { recursive: true, force: true });
    },
  };
}

/**
 * Waits for a condition that no event announces (a count going back down, a row in PostgreSQL), checking it every
 * `everyMs` up to a deadline; fails with `what` when the deadline passes.
 */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  deadlineMs = 5_000,
  everyMs = 10,
): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > deadlineMs) throw new Error(`still not true after ${deadlineMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
