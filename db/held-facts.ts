/**
 * Facts a clean stop could not commit (the history was unavailable to the end of the grace period) are not dropped:
 * they are written beside the history, in `<history>.held-facts`, one JSON event a line in their order, as the rows
 * they would have been (their time included). The next start on that history commits them before anything else and
 * removes the file. Written to a temporary name, synced, then renamed: the file is whole or absent.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { NewEvent } from './events.ts';
import { realHistoryPath } from './instance-lock.ts';

/**
 * The side file of a history file, named after its real path as the instance lock is (a symbolic link leads to the
 * same one).
 */
export function heldFactsFile(historyFile: string): string {
  let real: string;
  try {
    real = realHistoryPath(historyFile);
  } catch {
    real = path.resolve(historyFile);
  }
  return `${real}.held-facts`;
}

/** Writes the facts to the side file (replacing it); throws if it cannot (a full disk). */
export function writeHeldFacts(file: string, events: readonly NewEvent[]): void {
  const draft = `${file}.${process.pid}.tmp`;
  try {
    const fd = openSync(draft, 'w');
    try {
      writeSync(fd, events.map((event) => `${JSON.stringify(event)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(draft, file);
  } catch (error) {
    rmSync(draft, { force: true });
    throw error;
  }
  syncFolder(path.dirname(file));
}

/** The facts a stop left beside the history, in their order; [] when there is no side file. */
export function readHeldFacts(file: string): NewEvent[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as NewEvent);
}

/**
 * Whether the facts are on record already: a start that committed them and stopped before it removed their file (a
 * crash in between) leaves the file behind, and the next start must not commit them twice. The first fact, as the row
 * it became, says: every fact names its connection (numbers are never reused) or, for server-stopped, its time and
 * pid, and the facts went in in one transaction.
 */
export function heldFactsRecorded(db: BetterSqlite3.Database, facts: readonly NewEvent[]): boolean {
  const first = facts[0];
  if (first === undefined) return true;
  const found = db
    .prepare('SELECT 1 FROM events WHERE at = ? AND session IS ? AND type = ? AND data = ? LIMIT 1')
    .get(first.at ?? null, first.session ?? null, first.type, JSON.stringify(first.data));
  return found !== undefined;
}

export function removeHeldFacts(file: string): void {
  rmSync(file, { force: true });
  syncFolder(path.dirname(file));
}

/** The rename (or removal) itself made durable. */
function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some file systems cannot sync a folder: the rename is still atomic
  }
}
