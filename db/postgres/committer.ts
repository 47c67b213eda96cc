/**
 * Group commits to PostgreSQL: EventLog hands over the rows recorded during one turn of the event loop, and they are
 * committed in one transaction, one multi-row INSERT per run of new rows, before `done` runs. Commits finish in the
 * order they were asked (EventLog keeps one in flight). Each row names the node that recorded it.
 *
 * [P-49] An answer-repeated row is not inserted: it updates the session's previous row, the answer it repeats, as
 * SQLite's rowCommitter does (db/row-committer.ts), found through the (session, position) index.
 */
import type { StorageCondition } from '../errors.ts';
import type { BackgroundCommitter } from '../event-log.ts';
import type { AnswerRepeated } from '../events.ts';
import { type EventRow, eventRowJson } from '../row-committer.ts';
import { holdsCloses, insertEventsStatement, ROWS_PER_INSERT } from './insert-events.ts';
import { inTransaction, type Pool } from './pool.ts';

const LAST_ROW = '(SELECT max(position) FROM events WHERE session = $1)';

const REPEAT = `UPDATE events SET data = jsonb_set(jsonb_set(jsonb_set(data::jsonb,
    '{repeats}', to_jsonb(coalesce((data::jsonb ->> 'repeats')::bigint, 0) + 1)),
    '{lastAt}', to_jsonb($2::bigint)),
    '{lastRequestId}', coalesce($3::jsonb -> 'requestId', 'null'::jsonb))::text
  WHERE position = ${LAST_ROW}`;

const RATE_LIMITED = `UPDATE events SET data = jsonb_set(jsonb_set(data::jsonb,
    '{rateLimited}', to_jsonb(coalesce((data::jsonb ->> 'rateLimited')::bigint, 0) + 1)),
    '{lastRateLimitedAt}', to_jsonb($2::bigint))::text
  WHERE position = ${LAST_ROW}`;

/** `name`: a statement prepared once per connection, then only bound and run (the common group sizes) */
type Statement = { name?: string; text: string; values: unknown[] };

/** Groups of up to this many new rows run as prepared statements, one per size (larger ones are rare). */
const PREPARED_UP_TO_ROWS = 64;

/** The statements that commit `rows`, in order: one INSERT per run of new rows, one UPDATE per repeat. */
export function commitStatements(rows: readonly EventRow[], node: string | null): Statement[] {
  const statements: Statement[] = [];
  let run: EventRow[] = [];
  const endRun = () => {
    if (run.length > 0) statements.push(insertStatement(run, node));
    run = [];
  };
  for (const row of rows) {
    const [at, session, type, data] = row;
    if (type !== 'answer-repeated') {
      run.push(row);
      if (run.length >= ROWS_PER_INSERT) endRun();
      continue;
    }
    endRun();
    const json = eventRowJson(data);
    if ((JSON.parse(json) as AnswerRepeated['data']).count === 'rateLimited') {
      statements.push({ text: RATE_LIMITED, values: [session, at] });
    } else statements.push({ text: REPEAT, values: [session, at, json] });
  }
  endRun();
  return statements;
}

function insertStatement(rows: readonly EventRow[], node: string | null): Statement {
  const { text, values } = insertEventsStatement(rows, node);
  return rows.length <= PREPARED_UP_TO_ROWS
    ? { name: `imgcache-insert-${holdsCloses(rows) ? 'closes-' : ''}${rows.length}`, text, values }
    : { text, values };
}

export class PostgresCommitter implements BackgroundCommitter {
  readonly #pool: Pool;
  readonly #node: string | null;
  #tail: Promise<void> = Promise.resolve();
  #closed = false;

  /** `node`: the name each row is stamped with (null: a command, not a node) */
  constructor(pool: Pool, node: string | null) {
    this.#pool = pool;
    this.#node = node;
  }

  commit(rows: readonly EventRow[], done: (error: Error | null) => void): void {
    if (this.#closed) {
      setImmediate(done, new Error('the history committer is closed'));
      return;
    }
    const statements = commitStatements(rows, this.#node);
    this.#tail = this.#tail.then(() =>
      this.#run(statements).then(
        () => done(null),
        (error: Error) => done(error),
      ),
    );
  }

  async #run(statements: readonly Statement[]): Promise<void> {
    // One statement is atomic by itself: no BEGIN / COMMIT round trips for the common group of new rows.
    if (statements.length === 1) await this.#pool.query(statements[0] as Statement);
    else if (statements.length > 1) {
      await inTransaction(this.#pool, async (client) => {
        for (const statement of statements) await client.query(statement);
      });
    }
  }

  /** Waits for the commits asked so far; the pool is the backend's to end. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }
}

/** What a failed statement means to the operator: the server out of reach, or a refusal of the write. */
export function postgresCondition(error: unknown): StorageCondition {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string') {
    // Class 08: connection exception; 57P01-03: shutting down / cannot connect now; system errors of the socket.
    if (
      /^08|^57P0[123]$|^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_AGAIN)$|^ENOTFOUND$/.test(code)
    )
      return 'unreachable';
    if (code === '53100') return 'disk-full';
    if (code === '25006') return 'read-only';
    return 'refused';
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/terminated|timeout|ECONNREFUSED|not queryable|closed/i.test(message)) return 'unreachable';
  return 'refused';
}
