/**
 * Opening the history: WAL and the `synchronous` asked for (`full` unless told otherwise here; the server's own
 * default is `normal`, see src/config.ts), a busy timeout, migrations on writable opens, and SQLite's failures
 * turned into coded errors. A writable open fails at once, with a clear reason, when the history cannot be
 * written: a read-only, immutable or permission-denied file or folder (history-read-only), another process holding
 * the write lock (history-locked), a full disk when the open must write (history-disk-full). A folder
 * (history-is-a-folder) and another application's SQLite database (history-foreign-database) are refused as such.
 */

import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  HistoryDamagedError,
  HistoryDiskFullError,
  HistoryError,
  HistoryForeignDatabaseError,
  HistoryIsAFolderError,
  HistoryLockedError,
  HistoryNotADatabaseError,
  HistoryNotFoundError,
  HistoryReadOnlyError,
  HistoryUnavailableError,
} from './errors.ts';
import { diskIsFull, writeDenied } from './file-system.ts';
import { checkSchemaVersion, MIGRATIONS, migrate, refuseNewerSchema, schemaVersion } from './schema.ts';

export type Database = BetterSqlite3.Database;

export interface OpenDatabaseOptions {
  /** open without writing anything: no folder, no file, no migration (default false) */
  readonly?: boolean;
  /** how long to wait for another connection's lock before failing, in milliseconds (default 5000) */
  busyTimeoutMs?: number;
  /**
   * SQLite's `synchronous` for a writable open: `full` (the default) syncs every commit to the disk, so a commit
   * survives a power loss; `normal` (WAL) writes every commit to the OS, so it survives a crash or kill of the
   * server but a power loss may lose the last commits (never corrupting the file).
   */
  synchronous?: Synchronous;
  /**
   * check the file's structure before anything is written (SQLite's quick_check), refusing a damaged one; skipped for
   * a file over INTEGRITY_CHECK_MAX_BYTES (default false: the server's own open asks for it)
   */
  checkIntegrity?: boolean;
}

/**
 * The largest history checked at start. quick_check reads every page: about 0.15 s for a history of a million events
 * (49 MiB) on a 2-core machine, some 3 s per GiB; past this an operator checks with `sqlite3 F 'pragma quick_check'`.
 */
export const INTEGRITY_CHECK_MAX_BYTES = 1024 * 1024 * 1024;

export type Synchronous = 'full' | 'normal';

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * SQLite's page cache of a writable connection, in KiB. better-sqlite3 builds SQLite with a 16 MB cache per
 * connection; a writer of this append-only history touches only the newest pages of the table and its indexes, yet
 * every page it appends stays cached, so the server's memory grew with the history until 16 MB per connection (the
 * event loop's and the commit thread's). 1 MiB holds what the appends touch many times over. Read-only connections
 * (the usage export) keep the default: their sort spills to temporary files past the cache size.
 */
export const WRITER_CACHE_KIB = 1024;

/**
 * How many WAL pages a writable connection lets accumulate before it checkpoints them into the database file, on the
 * thread that commits (SQLite's default: 1,000). With `synchronous = NORMAL` a commit only writes to the OS; the
 * checkpoint is what syncs, the WAL once and the database file once, and the thread waits for both: a few
 * milliseconds each, whatever the WAL holds, so fewer checkpoints wait less. The price: a WAL of up to 64 MiB beside
 * the history while the server runs (removed at a clean stop), which the first open after a crash reads back.
 */
export const WAL_AUTOCHECKPOINT_PAGES = 16_384;
/** A WAL that grew past this (readers kept it from being reset) is cut back to it after its next checkpoint. */
export const WAL_SIZE_LIMIT_BYTES = 128 * 1024 * 1024;

export function openDatabase(file: string, options: OpenDatabaseOptions = {}): Database {
  const readonly = options.readonly ?? false;
  let db: Database | undefined;
  try {
    if (readonly && !fs.existsSync(file)) throw new HistoryNotFoundError(file);
    if (isPlainPath(file) && isFolder(file)) throw new HistoryIsAFolderError(file);
    if (!readonly) {
      createParentFolder(file);
      checkWritable(file);
    }
    db = new BetterSqlite3(file, {
      readonly,
      fileMustExist: readonly,
      timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    });
    if (readonly) checkSchemaVersion(db, file);
    else {
      if (options.checkIntegrity) refuseDamaged(db, file);
      prepareWritable(db, file, options.synchronous ?? 'full');
    }
    return db;
  } catch (error) {
    db?.close();
    throw toHistoryError(file, readonly, error);
  }
}

function prepareWritable(db: Database, file: string, synchronous: Synchronous): void {
  // Before anything writes: even switching to WAL changes the file, which must stay as a newer server (or another
  // application) left it. A read-only open of another application's database is history-outdated: it writes nothing.
  refuseForeignDatabase(db, file);
  refuseNewerSchema(db, file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
  db.pragma(`cache_size = -${WRITER_CACHE_KIB}`);
  db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  migrate(db, file);
  // A writable open can write now: take the write lock once, so that another process holding it is found here,
  // with its own error, rather than at the first event.
  db.exec('BEGIN IMMEDIATE');
  db.exec('COMMIT');
}

/** SQLite's quick_check of the whole file (its first finding when it is not `ok`), unless the file is too large. */
function refuseDamaged(db: Database, file: string): void {
  let bytes = 0;
  try {
    bytes = fs.statSync(file).size;
  } catch {
    return; // a new file
  }
  if (bytes === 0 || bytes > INTEGRITY_CHECK_MAX_BYTES) return;
  const finding = db.pragma('quick_check(1)', { simple: true });
  if (finding !== 'ok') throw new HistoryDamagedError(file, String(finding));
}

function isFolder(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A database that holds tables but no imgcache schema is another application's: imgcache's tables are not added to
 * it. No schema: version 0 (imgcache sets it with its first tables), or a version set by someone else on a file
 * without any of the tables imgcache's migrations make. An empty database (a new file, or one created empty) becomes
 * a history.
 */
function refuseForeignDatabase(db: Database, file: string): void {
  const tables = tableNames(db);
  if (tables.length === 0) return;
  if (schemaVersion(db) !== 0 && tables.some((table) => imgcacheTables().has(table))) return;
  throw new HistoryForeignDatabaseError(file, tables);
}

function tableNames(db: Database): string[] {
  return db
    .prepare(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .pluck()
    .all() as string[];
}

let knownTables: ReadonlySet<string> | null = null;

/** Every table a migration of imgcache's makes (some are dropped by later ones): migrated once in memory to list them. */
function imgcacheTables(): ReadonlySet<string> {
  if (knownTables) return knownTables;
  const names = new Set<string>();
  const scratch = new BetterSqlite3(':memory:');
  try {
    for (const migration of MIGRATIONS) {
      scratch.exec(migration);
      for (const table of tableNames(scratch)) names.add(table);
    }
  } finally {
    scratch.close();
  }
  knownTables = names;
  return names;
}

/**
 * The file, its WAL files and its folder must be writable (a read-only file system, an immutable file, a denied
 * permission): SQLite would open such a file read-only, or not at all, and only fail at the first write.
 */
function checkWritable(file: string): void {
  if (!isPlainPath(file)) return;
  const denied = writeDenied(file);
  if (denied) throw new HistoryReadOnlyError(file, denied);
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
  if (code.startsWith('SQLITE_CORRUPT')) return new HistoryDamagedError(file, (error as Error).message, error);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new HistoryLockedError(file, error);
  if (code.startsWith('SQLITE_READONLY')) return new HistoryReadOnlyError(file, error);
  if (/^SQLITE_(FULL|IOERR)/.test(code) && (code.startsWith('SQLITE_FULL') || diskIsFull(file))) {
    return new HistoryDiskFullError(file, error);
  }
  if (!readonly && isDeniedWrite(error)) return new HistoryReadOnlyError(file, error);
  if (code.startsWith('SQLITE_CANTOPEN') && readonly && !fs.existsSync(file)) {
    return new HistoryNotFoundError(file, error);
  }
  return new HistoryUnavailableError(file, error);
}

/** A file-system error that says the process may not write there (the folder could not be created). */
function isDeniedWrite(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'EROFS' || code === 'EACCES' || code === 'EPERM';
}

function sqliteCode(error: unknown): string {
  return error instanceof BetterSqlite3.SqliteError ? error.code : '';
}
