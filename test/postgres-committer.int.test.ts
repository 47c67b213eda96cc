/**
 * The PostgreSQL committer and EventLog with no local database, on a real PostgreSQL 15: groups commit in order,
 * an answer repeated counts on the session's previous row [P-49] as on SQLite, a failed group is refused as a whole,
 * and a URL's password never reaches a message.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventLog } from '../db/event-log.ts';
import type { NewEvent } from '../db/events.ts';
import { commitStatements, PostgresCommitter, postgresCondition } from '../db/postgres/committer.ts';
import { readEvents } from '../db/postgres/history-store.ts';
import { isPostgresUrl, openPool, type Pool, redactUrl } from '../db/postgres/pool.ts';
import { migratePostgres, POSTGRES_MIGRATIONS } from '../db/postgres/schema.ts';
import type { EventRow } from '../db/row-committer.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { within } from './helpers/within.ts';

let postgres: PostgresInstance;
let pool: Pool;

test.before(async () => {
  postgres = await startPostgres();
  const url = await postgres.createDatabase('committer');
  pool = openPool(url);
  await migratePostgres(pool, url);
});

test.after(async () => {
  await pool?.end();
  await postgres?.stop();
});

function record(log: EventLog, events: NewEvent[]): Promise<Error | null> {
  return new Promise((resolve) => log.record(events, resolve));
}

test('[P-49] an answer repeated updates the previous row of its session, as on SQLite; other rows are inserted', async () => {
  const log = new EventLog(null, { background: new PostgresCommitter(pool, 'node-a'), location: 'test' });
  const refused: NewEvent = {
    session: 7,
    type: 'request-refused',
    at: 1_000,
    data: { requestId: 1, code: 'image-not-found', image: 'nope.png' },
  } as NewEvent;
  const repeated = (requestId: number, count: 'repeats' | 'rateLimited', at: number): NewEvent => ({
    session: 7,
    type: 'answer-repeated',
    at,
    data: { requestId, count },
  });
  assert.is(await record(log, [refused, repeated(2, 'repeats', 1_001)]), null);
  assert.is(await record(log, [repeated(3, 'repeats', 1_002), repeated(4, 'rateLimited', 1_003)]), null);
  const rows = await readEvents(pool, { session: 7 });
  assert.is(rows.length, 1, 'the repeats are counted on the row they repeat');
  assert.equal(rows[0]?.data, {
    requestId: 1,
    code: 'image-not-found',
    image: 'nope.png',
    repeats: 2,
    lastAt: 1_002,
    lastRequestId: 3,
    rateLimited: 1,
    lastRateLimitedAt: 1_003,
  });
  const node = await pool.query('SELECT DISTINCT node FROM events WHERE session = 7');
  assert.equal(node.rows, [{ node: 'node-a' }], 'each row names the node that recorded it');
  await log.finish(1_000);
});

test('a group longer than one INSERT takes commits whole and in order; one that fails stores none of its rows', async () => {
  const committer = new PostgresCommitter(pool, null);
  const rows: EventRow[] = Array.from({ length: 4_500 }, (_, index) => [index, 9, 'list-served', '{}']);
  assert.ok(commitStatements(rows, null).length > 1, 'several INSERTs');
  await new Promise<void>((resolve, reject) => committer.commit(rows, (error) => (error ? reject(error) : resolve())));
  const stored = await readEvents(pool, { session: 9 });
  assert.equal(
    stored.map((event) => event.at),
    rows.map((row) => row[0]),
  );
  const broken: EventRow[] = [
    [1, 10, 'list-served', '{}'],
    ...rows.slice(0, 2_500).map((row) => [row[0], 10, null as unknown as string, '{}'] as EventRow),
  ];
  const failure = await new Promise<Error | null>((resolve) => committer.commit(broken, resolve));
  assert.instance(failure, Error);
  assert.is(postgresCondition(failure), 'refused');
  assert.is((await readEvents(pool, { session: 10 })).length, 0, 'the transaction stored nothing');
  await committer.close();
});

test('PostgreSQL cut off without a reset: a commit fails within the query timeout (unreachable), then works again', async () => {
  const url = await postgres.createDatabase('frozen');
  const quick = openPool(url, { connectTimeoutMs: 500, queryTimeoutMs: 500 });
  await migratePostgres(quick, url);
  const committer = new PostgresCommitter(quick, null);
  const commit = (at: number) =>
    new Promise<Error | null>((resolve) => committer.commit([[at, 11, 'list-served', '{}']], resolve));
  try {
    assert.is(await commit(1), null);
    postgres.freeze();
    let failure: Error | null;
    try {
      failure = await within(commit(2), 'the commit to a silent server fails rather than waits', 5_000);
    } finally {
      postgres.thaw();
    }
    assert.instance(failure, Error);
    assert.is(postgresCondition(failure), 'unreachable', String(failure));
    assert.is(await commit(3), null, 'the next commit goes through');
  } finally {
    await committer.close();
    await quick.end();
  }
});

test('a URL names PostgreSQL; its password is hidden in what is logged; an unreachable server is said as such', () => {
  assert.ok(isPostgresUrl('postgres://u@h/db') && isPostgresUrl('postgresql://u@h/db'));
  assert.not.ok(isPostgresUrl('postgres.sqlite') || isPostgresUrl('./history.sqlite'));
  assert.is(
    redactUrl('postgres://imgcache:s3cret@db.example:5432/imgcache'),
    'postgres://imgcache:***@db.example:5432/imgcache',
  );
  assert.is(redactUrl('postgres://imgcache@db.example/imgcache'), 'postgres://imgcache@db.example/imgcache');
  assert.is(
    postgresCondition(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    'unreachable',
  );
  assert.is(postgresCondition(Object.assign(new Error('terminating connection'), { code: '57P01' })), 'unreachable');
  assert.is(postgresCondition(new Error('Connection terminated unexpectedly')), 'unreachable');
});

const closed = (session: number, reason: string, at: number): NewEvent =>
  ({ session, type: 'session-closed', at, data: { reason } }) as NewEvent;

test('[P-83] a session is closed on record once: a second close, in a later group or at the same moment, is left out', async () => {
  const a = new EventLog(null, { background: new PostgresCommitter(pool, 'node-a'), location: 'test' });
  const b = new EventLog(null, { background: new PostgresCommitter(pool, 'node-b'), location: 'test' });
  const admitted = { session: 41, type: 'session-admitted', at: 2_000, data: { name: 'client-41' } } as NewEvent;
  assert.is(await record(a, [admitted, closed(41, 'node-lost', 2_001)]), null);
  // held by a node that was cut off, committed after the close another node recorded: not inserted, no error
  const refused = {
    session: 41,
    type: 'request-refused',
    at: 2_002,
    data: { requestId: 1, code: 'history-unavailable' },
  } as NewEvent;
  assert.is(await record(b, [closed(41, 'client-exit', 2_002), refused]), null);
  const rows = await pool.query('SELECT type, node FROM events WHERE session = 41 ORDER BY position');
  assert.equal(
    rows.rows.map((row) => [row.type, row.node]),
    [
      ['session-admitted', 'node-a'],
      ['session-closed', 'node-a'],
      ['request-refused', 'node-b'],
    ],
    'the other rows of the group are inserted, in order',
  );
  // two nodes committing a close of one session at the same moment: one is inserted
  const racing = await Promise.all(
    Array.from({ length: 8 }, (_, index) =>
      record(index % 2 === 0 ? a : b, [closed(42, index % 2 === 0 ? 'node-lost' : 'history-unavailable', 3_000)]),
    ),
  );
  assert.equal(racing, Array(8).fill(null));
  assert.is((await readEvents(pool, { session: 42 })).length, 1);
});

test('[P-83] a history that holds a session closed twice (an older version) migrates, its rows untouched', async () => {
  const url = await postgres.createDatabase('closed_twice');
  const older = openPool(url);
  try {
    await older.query('CREATE TABLE imgcache_schema (version integer PRIMARY KEY)');
    for (const [index, migration] of POSTGRES_MIGRATIONS.slice(0, 2).entries()) {
      await older.query(migration);
      await older.query('INSERT INTO imgcache_schema (version) VALUES ($1)', [index + 1]);
    }
    await older.query(
      `INSERT INTO events (at, session, type, data) VALUES
       (1, 5, 'session-closed', '{"reason":"node-lost"}'), (2, 5, 'session-closed', '{"reason":"client-exit"}')`,
    );
    assert.is(await migratePostgres(older, url), POSTGRES_MIGRATIONS.length - 2);
    assert.is((await readEvents(older, { session: 5 })).length, 2, 'the history is not rewritten');
    const log = new EventLog(null, { background: new PostgresCommitter(older, 'node-a'), location: 'test' });
    assert.is(await record(log, [closed(5, 'server-restart', 3), closed(6, 'client-exit', 4)]), null);
    const rows = await older.query('SELECT session, data::jsonb ->> $1 AS reason FROM events ORDER BY position', [
      'reason',
    ]);
    assert.equal(
      rows.rows.map((row) => [Number(row.session), row.reason]),
      [
        [5, 'node-lost'],
        [5, 'client-exit'],
        [6, 'client-exit'],
      ],
      'a close already on record is still left out',
    );
  } finally {
    await older.end();
  }
});

test.run();
