/**
 * Opening the history: WAL and `synchronous = FULL` (every commit survives power loss; group commit keeps that
 * cheap), a busy timeout, migrations on writable opens, and SQLite's failures turned into coded errors.
 */

import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  HistoryError,
  HistoryLockedError,
  HistoryNotADatabaseError,
  HistoryNotFoundError,
  HistoryReadOnlyError,
  HistoryUnavailableError,
} from './errors.ts';
import { checkSchemaVersion, migrate, refuseNewerSchema } from './schema.ts';

export type Database = BetterSqlite3.Database;

export interface OpenDatabaseOptions {
  /** open without writing anything: no folder, no file, no migration (default false) */
  readonly?: boolean;
  /** how long to wait for another connection's lock before failing, in milliseconds (default 5000) */
  busyTimeoutMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export function openDatabase(file: string, options: OpenDatabaseOptions = {}): Database {
  const readonly = options.readonly ?? false;
  let db: Database | undefined;
  try {
    if (readonly && !fs.existsSync(file)) throw new HistoryNotFoundError(file);
    if (!readonly) createParentFolder(file);
    db = new BetterSqlite3(file, {
      readonly,
      fileMustExist: readonly,
      timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    });
    if (readonly) checkSchemaVersion(db, file);
    else prepareWritable(db, file);
    return db;
  } catch (error) {
    db?.close();
    throw toHistoryError(file, readonly, error);
  }
}

function prepareWritable(db: Database, file: string): void {
  // Before anything writes: even switching to WAL changes the file, which must stay as a newer server left it.
  refuseNewerSchema(db, file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  migrate(db, file);
}

function createParentFolder(file: string): void {
  if (!isPlainPath(file)) return;
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}

/** Not `:memory:`, not a temporary database (''), not a `file:` URI. */
function isPlainPath(file: string): boolean {
  const name = file.trim();
  return name !== '' && name !== ':memory:' && !name.startsWith('file:');
}

function toHistoryError(file: string, readonly: boolean, error: unknown): HistoryError {
  if (error instanceof HistoryError) return error;
  const code = sqliteCode(error);
  if (code.startsWith('SQLITE_NOTADB')) return new HistoryNotADatabaseError(file, error);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new HistoryLockedError(file, error);
  if (code.startsWith('SQLITE_READONLY')) return new HistoryReadOnlyError(file, error);
  if (code.startsWith('SQLITE_CANTOPEN') && readonly && !fs.existsSync(file)) {
    return new HistoryNotFoundError(file, error);
  }
  return new HistoryUnavailableError(file, error);
}

function sqliteCode(error: unknown): string {
  return error instanceof BetterSqlite3.SqliteError ? error.code : '';
}
