/**
 * The failures of the event store: one class per failure, each with a stable `code` that callers and tests match on.
 * The SQLite error that caused one, when there is one, is kept as `cause`.
 */

export abstract class HistoryError extends Error {
  abstract readonly code: string;

  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
  }
}

/** The history could not be opened, for a reason none of the more precise classes below names. */
export class HistoryUnavailableError extends HistoryError {
  readonly code = 'history-unavailable';

  constructor(file: string, cause: unknown) {
    super(`cannot open the history ${file}: ${describe(cause)}`, cause);
  }
}

/** A read-only open of a file that does not exist (read-only opens never create the history). */
export class HistoryNotFoundError extends HistoryError {
  readonly code = 'history-not-found';

  constructor(file: string, cause?: unknown) {
    super(`the history ${file} does not exist`, cause);
  }
}

/**
 * SQLite found the history damaged (a page that does not read back as what the file's structure says it is): the
 * server would append to it, but its audit trail could not be read whole.
 */
export class HistoryDamagedError extends HistoryError {
  readonly code = 'history-damaged';

  constructor(file: string, finding: string, cause?: unknown) {
    super(
      `the history ${file} is damaged (SQLite: ${finding}): restore it from a backup, or save what can be read with ` +
        `sqlite3 ${file} .recover | sqlite3 recovered.sqlite, and start on that`,
      cause,
    );
  }
}

export class HistoryNotADatabaseError extends HistoryError {
  readonly code = 'history-not-a-database';

  constructor(file: string, cause: unknown) {
    super(`the history ${file} is not an SQLite database (or is encrypted or damaged)`, cause);
  }
}

/** The history path names a folder, not a file. */
export class HistoryIsAFolderError extends HistoryError {
  readonly code = 'history-is-a-folder';

  constructor(file: string) {
    super(
      `the history ${file} is a folder: give the path of a file (it is created if missing), e.g. ${file}/history.sqlite`,
    );
  }
}

/**
 * An SQLite database of another application: tables, and no imgcache schema. Adding imgcache's tables to it would
 * mix two applications' data in one file; an empty database file is taken as a new history.
 */
export class HistoryForeignDatabaseError extends HistoryError {
  readonly code = 'history-foreign-database';

  constructor(file: string, tables: readonly string[]) {
    const shown = tables.slice(0, 5).join(', ') + (tables.length > 5 ? `, and ${tables.length - 5} more` : '');
    super(
      `the history ${file} is an SQLite database of another application (tables: ${shown}), not an imgcache ` +
        'history: give the path of an imgcache history, or of a new file',
    );
  }
}

/**
 * The history file a running server writes to is gone or replaced, or its instance lock is: another server could
 * start on the same path and hand out the same client names, and nothing recorded from now on would be found there.
 */
export class HistoryLostError extends HistoryError {
  readonly code = 'history-lost';

  constructor(
    file: string,
    readonly what: string,
  ) {
    super(`the history ${file} is lost while the server runs: ${what}; the server stops`);
  }
}

/** Another process holds a lock on the file for longer than the busy timeout. */
export class HistoryLockedError extends HistoryError {
  readonly code = 'history-locked';

  constructor(file: string, cause: unknown) {
    super(`the history ${file} is locked by another process`, cause);
  }
}

/** Another server is serving from this history (it holds the history's lock file). */
export class HistoryInUseError extends HistoryError {
  readonly code = 'history-in-use';

  constructor(file: string, owner: number | null) {
    super(
      `the history ${file} is in use by another imgcache server${owner === null ? '' : ` (pid ${owner})`}: ` +
        'two servers on one history would hand out the same client names',
    );
  }
}

/**
 * The history file has other names (hard links). SQLite names a history's WAL after the path it was opened by, so
 * two servers given two of these names would each keep a WAL of their own and overwrite each other's commits at
 * checkpoint, and no lock named after a path would stop them: such a file is refused.
 */
export class HistoryHardLinkedError extends HistoryError {
  readonly code = 'history-hard-linked';

  constructor(file: string, links: number) {
    super(
      `the history ${file} has ${links} names (hard links): a server on each would keep its own WAL and overwrite ` +
        "the other's commits; remove the other links (or copy the file) and start again",
    );
  }
}

/** A writable open of a file (or folder) the process may not write to. */
export class HistoryReadOnlyError extends HistoryError {
  readonly code = 'history-read-only';

  constructor(file: string, cause: unknown) {
    const why = systemReason(cause);
    super(
      `the history ${file} cannot be written${why ? ` (${why})` : ''}: check the permissions and attributes of ` +
        'the file and its folder, and that its file system is mounted read-write',
      cause,
    );
  }
}

/** A writable open that had to write (a migration, the switch to WAL) on a full disk. */
export class HistoryDiskFullError extends HistoryError {
  readonly code = 'history-disk-full';

  constructor(file: string, cause: unknown) {
    super(`the history ${file} cannot be written: the disk is full (free some space and start again)`, cause);
  }
}

/** The file's schema version is not the one this server's code is for: both versions, how they differ, what to do. */
export abstract class HistorySchemaVersionError extends HistoryError {
  constructor(
    file: string,
    readonly fileVersion: number,
    readonly knownVersion: number,
    comparison: string,
    remedy: string,
  ) {
    super(`the history ${file} has schema version ${fileVersion}, ${comparison}; ${remedy}`);
  }
}

/** The file was written by a newer version of the server: opening it could misread or damage it. */
export class HistoryTooNewError extends HistorySchemaVersionError {
  readonly code = 'history-too-new';

  constructor(file: string, fileVersion: number, knownVersion: number) {
    super(
      file,
      fileVersion,
      knownVersion,
      `newer than the ${knownVersion} this server knows`,
      'upgrade the server or use another history file',
    );
  }
}

/** A read-only open of a file whose schema is older than the code's: only a writable open migrates it. */
export class HistoryOutdatedError extends HistorySchemaVersionError {
  readonly code = 'history-outdated';

  constructor(file: string, fileVersion: number, knownVersion: number) {
    super(
      file,
      fileVersion,
      knownVersion,
      `older than the ${knownVersion} this server needs`,
      'open it writable once to migrate it',
    );
  }
}

/** A commit of events failed: none of the events of that batch is stored. */
export class HistoryAppendError extends HistoryError {
  readonly code = 'history-append-failed';
  /** the SQLite result code of the failure, e.g. SQLITE_FULL; '' when it did not come from SQLite */
  readonly sqliteCode: string;
  /** what is wrong, in the operator's terms */
  readonly condition: StorageCondition;

  constructor(count: number, cause: unknown, file?: string, condition?: StorageCondition) {
    const sqliteCode = sqliteCodeOf(cause);
    condition ??= storageCondition(sqliteCode);
    super(
      `cannot write to the history${file ? ` ${file}` : ''}: ${CONDITIONS[condition]} ` +
        `(${sqliteCode ? `${sqliteCode}: ` : ''}${describe(cause)}); ${count} event(s) not stored`,
      cause,
    );
    this.sqliteCode = sqliteCode;
    this.condition = condition;
  }
}

/** Events were recorded after the event log was closed. */
export class HistoryClosedError extends HistoryError {
  readonly code = 'history-closed';

  constructor() {
    super('the event log is closed');
  }
}

/** What stops SQLite from writing, in the operator's terms: each names what to fix. */
export type StorageCondition =
  | 'locked'
  | 'disk-full'
  | 'read-only'
  | 'io-error'
  | 'damaged'
  | 'unreachable'
  | 'refused'
  | 'other';

const CONDITIONS: Readonly<Record<StorageCondition, string>> = {
  locked: 'another process holds a lock on it (is a second server or an sqlite3 shell using the file?)',
  'disk-full': 'the disk is full',
  'read-only': 'the file, its folder or its file system is read-only',
  'io-error': 'the system refused a read or a write (a read-only, immutable, failing or vanished file?)',
  damaged: 'the file is damaged',
  unreachable: 'the database server cannot be reached (is PostgreSQL running and reachable?)',
  refused: 'the database server refused the write',
  other: 'SQLite failed',
};

/** The SQLite result code carried by an error (better-sqlite3 sets `code`, e.g. SQLITE_BUSY), or ''. */
export function sqliteCodeOf(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : '';
}

/** The condition behind an SQLite result code (extended codes included: SQLITE_IOERR_WRITE is an io-error). */
export function storageCondition(sqliteCode: string): StorageCondition {
  if (/^SQLITE_(BUSY|LOCKED)/.test(sqliteCode)) return 'locked';
  if (sqliteCode.startsWith('SQLITE_FULL')) return 'disk-full';
  if (sqliteCode.startsWith('SQLITE_READONLY')) return 'read-only';
  if (/^SQLITE_(IOERR|CANTOPEN)/.test(sqliteCode)) return 'io-error';
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(sqliteCode)) return 'damaged';
  return 'other';
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** The system's reason for a file-system error (EROFS, EPERM, EACCES: read-only, immutable, permission). */
function systemReason(cause: unknown): string {
  const code = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
  if (code === 'EROFS') return 'EROFS: the file system is read-only';
  if (code === 'EPERM') return 'EPERM: the file is immutable or append-only';
  if (code === 'EACCES') return 'EACCES: permission denied';
  return typeof code === 'string' ? code : '';
}
