/**
 * [P-90] The operator port of a node whose history is on PostgreSQL (a real PostgreSQL 15): an idle node, which
 * commits nothing, still says down once PostgreSQL is gone (its heartbeat fails), and up again once it is back; its
 * metrics are those of a single node on SQLite.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MessageType } from '../src/protocol/index.ts';
import { healthBecomes, metricSamples, operatorRequest } from './helpers/operator-http.ts';
import { type PostgresInstance, startPostgres } from './helpers/postgres.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

let postgres: PostgresInstance;

test.before(async () => {
  postgres = await startPostgres();
});

test.after(async () => {
  await postgres?.stop();
});

test('[P-90] on PostgreSQL: up with its node name, metrics as on SQLite; down while PostgreSQL is gone though no client came; up once it is back', async () => {
  const running = await startTestServer({
    database: await postgres.createDatabase('operator_port'),
    nodeName: 'node-a',
    operatorPort: 0,
    nodeHeartbeatMs: 100,
    nodeLostAfterMs: 1_000,
  });
  const operator = running.server.operator;
  try {
    if (!operator) throw new Error('the operator port is off');
    assert.equal(await healthBecomes(operator, 200), { status: 'up', node: 'node-a' });
    const peer = await RawConnection.open(running.port);
    peer.hello();
    await within(peer.nextJson(MessageType.WELCOME), 'WELCOME');
    const metrics = metricSamples((await operatorRequest(operator, '/metrics')).body);
    assert.is(metrics.get('imgcache_admissions_total'), 1);
    assert.is(metrics.get('imgcache_sessions_open'), 1);
    assert.ok((metrics.get('imgcache_history_commit_seconds_count') ?? 0) >= 1, 'commits to PostgreSQL are timed');
    peer.destroy();
    await within(
      running.waitForEvent((event) => event.type === 'session-closed'),
      'the close on record',
    );

    await postgres.halt();
    assert.equal(await healthBecomes(operator, 503), { status: 'down', reason: 'history-unavailable', node: 'node-a' });
    await postgres.start();
    assert.equal(await healthBecomes(operator, 200), { status: 'up', node: 'node-a' });
  } finally {
    if (!postgres.running()) await postgres.start();
    await running.stop();
  }
});

test.run();
