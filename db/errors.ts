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

export class HistoryNotADatabaseError extends HistoryError {
  readonly code = 'history-not-a-database';

  constructor(file: string, cause: unknown) {
    super(`the history ${file} is not an SQLite database (or is encrypted or damaged)`, cause);
  }
}

/** Another process holds a lock on the file for longer than the busy timeout. */
export class HistoryLockedError extends HistoryError {
  readonly code = 'history-locked';

  constructor(file: string, cause: unknown) {
    super(`the history ${file} is locked by another process`, cause);
  }
}

/** A writable open of a file (or folder) the process may not write to. */
export class HistoryReadOnlyError extends HistoryError {
  readonly code = 'history-read-only';

  constructor(file: string, cause: unknown) {
    super(`the history ${file} cannot be written (check the permissions of the file and its folder)`, cause);
  }
}

/** The file was written by a newer version of the server: opening it could misread or damage it. */
export class HistoryTooNewError extends HistoryError {
  readonly code = 'history-too-new';

  constructor(
    file: string,
    readonly fileVersion: number,
    readonly knownVersion: number,
  ) {
    super(
      `the history ${file} has schema version ${fileVersion}, newer than the ${knownVersion} this server knows; ` +
        'upgrade the server or use another history file',
    );
  }
}

/** A read-only open of a file whose schema is older than the code's: only a writable open migrates it. */
export class HistoryOutdatedError extends HistoryError {
  readonly code = 'history-outdated';

  constructor(
    file: string,
    readonly fileVersion: number,
    readonly knownVersion: number,
  ) {
    super(
      `the history ${file} has schema version ${fileVersion}, older than the ${knownVersion} this server needs; ` +
        'open it writable once to migrate it',
    );
  }
}

/** A commit of events failed: none of the events of that batch is stored. */
export class HistoryAppendError extends HistoryError {
  readonly code = 'history-append-failed';

  constructor(count: number, cause: unknown) {
    super(`could not store ${count} event(s): ${describe(cause)}`, cause);
  }
}

/** Events were recorded after the event log was closed. */
export class HistoryClosedError extends HistoryError {
  readonly code = 'history-closed';

  constructor() {
    super('the event log is closed');
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
