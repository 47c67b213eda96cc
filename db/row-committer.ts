/**
 * The statements that append a group of rows to an SQLite history, prepared once per connection (the event loop's,
 * or the commit thread's). A group of plain rows is one INSERT of all of them, which SQLite makes atomic on its own:
 * no BEGIN and COMMIT of their own, and one pass through the table and its indexes instead of a statement run per
 * row. A group that holds an answer-repeated row, or more rows than one INSERT takes, is one IMMEDIATE transaction
 * of such INSERTs and the UPDATEs, in the order of the rows.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { AnswerRepeated } from './events.ts';
import { compactServedData, imageVersionNumbers, type ServedImageRow, servedImageJson } from './image-versions.ts';

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement<unknown[]>;

/**
 * An event turned into its row when recorded, so a caller mutating its object later cannot change the history: its
 * data as JSON text, or for an image served the data's members, which the committer encodes (db/image-versions.ts).
 */
export type EventRow = [at: number, session: number | null, type: string, data: string | ServedImageRow];

/** A row's data as JSON text, the form a history without image versions (PostgreSQL) stores. */
export function eventRowJson(data: string | ServedImageRow): string {
  return typeof data === 'string' ? data : servedImageJson(data);
}

/**
 * Rows in one INSERT at most (5 parameters each; SQLite allows 32,766). Past 64 the cost a row stops falling; one
 * statement is prepared per count up to this, when first needed.
 */
export const MAX_ROWS_PER_INSERT = 64;

/**
 * The one INSERT of event rows into an SQLite history: `count` rows of positional parameters, each row's at, session,
 * type, data and image version (null but for an image served). The group committer (below) and the registry
 * commands (registry-store.ts) both prepare theirs from it, so a change to the columns of `event_rows` is made here
 * only.
 */
export function insertEventsSql(count: number): string {
  const row = '(?, ?, ?, ?, ?)';
  return `INSERT INTO event_rows (at, session, type, data, image_version) VALUES ${`${row}, `.repeat(count - 1)}${row}`;
}

/** The transaction that appends rows, on `db`; its statements prepared once. */
export function rowCommitter(db: Database): (rows: readonly EventRow[]) => void {
  const inserts: Statement[] = [];
  const insertOf = (count: number): Statement => {
    let insert = inserts[count - 1];
    if (!insert) {
      insert = db.prepare<unknown[]>(insertEventsSql(count));
      inserts[count - 1] = insert;
    }
    return insert;
  };
  // [P-49] An answer-repeated row updates the session's previous row, which is the answer it repeats; the lookup
  // walks back from the end of the table and stops at that row, a few rows back. A rate-limited one may land on an
  // image served, whose compact data holds no members: that row is rewritten whole, as the JSON object the events
  // view gives, with no image version (a row that is JSON already is taken as it is, with no look at the view).
  const lastRow = '(SELECT position FROM event_rows WHERE session = @session ORDER BY position DESC LIMIT 1)';
  const whole =
    'CASE WHEN image_version IS NULL THEN data ELSE (SELECT data FROM events WHERE events.position = event_rows.position) END';
  const repeat = db.prepare<[{ at: number; session: number | null; data: string }]>(
    `UPDATE event_rows SET image_version = NULL, data = json_set(${whole},
       '$.repeats', coalesce(json_extract(${whole}, '$.repeats'), 0) + 1, '$.lastAt', CAST(@at AS INTEGER),
       '$.lastRequestId', json_extract(@data, '$.requestId'))
     WHERE position = ${lastRow}`,
  );
  const rateLimited = db.prepare<[{ at: number; session: number | null }]>(
    `UPDATE event_rows SET image_version = NULL, data = json_set(${whole},
       '$.rateLimited', coalesce(json_extract(${whole}, '$.rateLimited'), 0) + 1,
       '$.lastRateLimitedAt', CAST(@at AS INTEGER))
     WHERE position = ${lastRow}`,
  );
  const versionOf = imageVersionNumbers(db);
  /** Inserts rows[from, to), plain rows all, in INSERTs of at most MAX_ROWS_PER_INSERT. */
  const insertRows = (rows: readonly EventRow[], from: number, to: number): void => {
    for (let start = from; start < to; start += MAX_ROWS_PER_INSERT) {
      const end = Math.min(start + MAX_ROWS_PER_INSERT, to);
      const values: unknown[] = [];
      for (let index = start; index < end; index++) {
        const [at, session, type, data] = rows[index] as EventRow;
        if (typeof data === 'string') values.push(at, session, type, data, null);
        else values.push(at, session, type, compactServedData(data), versionOf(data));
      }
      insertOf(end - start).run(values);
    }
  };
  const commit = db.transaction((rows: readonly EventRow[]) => {
    let plainFrom = 0;
    rows.forEach((row, index) => {
      if (row[2] !== 'answer-repeated') return;
      insertRows(rows, plainFrom, index);
      plainFrom = index + 1;
      const data = eventRowJson(row[3]);
      if ((JSON.parse(data) as AnswerRepeated['data']).count === 'rateLimited') {
        rateLimited.run({ at: row[0], session: row[1] });
      } else repeat.run({ at: row[0], session: row[1], data });
    });
    insertRows(rows, plainFrom, rows.length);
  });
  return (rows) => {
    if (rows.length === 0) return;
    if (rows.length <= MAX_ROWS_PER_INSERT && rows.every((row) => row[2] !== 'answer-repeated')) {
      insertRows(rows, 0, rows.length);
      return;
    }
    // The image versions first, each new one committed on its own: numbers found inside the transaction would not
    // be remembered (a rollback could take them away), and every row would look its version up again.
    for (const row of rows) if (typeof row[3] !== 'string') versionOf(row[3]);
    commit.immediate(rows);
  };
}
