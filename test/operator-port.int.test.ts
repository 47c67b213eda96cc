/**
 * [P-90] The operator port over real HTTP: /health says up or down (a history that cannot record, a server that
 * stops), /metrics counts what the history recorded, in the Prometheus text format.
 */
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MessageType } from '../src/protocol/index.ts';
import { OPERATOR_MAX_CONNECTIONS } from '../src/server/operator-port.ts';
import { metricSamples, type OperatorAnswer, operatorRequest } from './helpers/operator-http.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { holdWriteLock } from './helpers/sqlite-conditions.ts';
import { startTestServer, type TestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** One request to the server's operator port. */
function request(server: TestServer, path: string, method = 'GET'): Promise<OperatorAnswer> {
  const operator = server.server.operator;
  if (!operator) throw new Error('the operator port is off');
  return operatorRequest(operator, path, method);
}

async function admitted(server: TestServer): Promise<RawConnection> {
  const peer = await RawConnection.open(server.port);
  peer.hello();
  await within(peer.nextJson(MessageType.WELCOME), 'WELCOME');
  return peer;
}

test('[P-90] the operator port is off unless asked for', async () => {
  const server = await startTestServer();
  try {
    assert.is(server.server.operator, null);
  } finally {
    await server.stop();
  }
});

test('[P-90] GET /health is 200 up on a working node; other paths 404, other methods 405', async () => {
  const server = await startTestServer({ operatorPort: 0 });
  try {
    const operator = server.server.operator;
    assert.ok(operator && operator.port > 0 && operator.host === '127.0.0.1', 'listening on a free loopback port');
    const health = await request(server, '/health');
    assert.is(health.status, 200);
    assert.is(health.contentType, 'application/json');
    assert.equal(JSON.parse(health.body), { status: 'up' });
    assert.is((await request(server, '/')).status, 404);
    assert.is((await request(server, '/healthz')).status, 404);
    assert.is((await request(server, '/health', 'POST')).status, 405);
    const head = await request(server, '/health', 'HEAD');
    assert.is(head.status, 200);
    assert.is(head.body, '');
  } finally {
    await server.stop();
  }
});

test('[P-90] a request whose headers never end is closed within seconds, and the port stays bounded', async () => {
  const server = await startTestServer({ operatorPort: 0 });
  const sockets: net.Socket[] = [];
  try {
    const operator = server.server.operator;
    if (!operator) throw new Error('the operator port is off');
    const open = async (): Promise<net.Socket> => {
      const socket = net.connect(operator.port, operator.host);
      socket.resume(); // read what comes (a 408), so that the close is seen
      sockets.push(socket);
      await once(socket, 'connect');
      return socket;
    };
    const slow = await open();
    slow.write('GET /health HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
    const started = performance.now();
    await within(once(slow, 'close'), 'the half-sent request is closed', 15_000);
    assert.ok(performance.now() - started < 12_000, 'within the headers timeout and a look');
    // More idle connections than the port takes: the ones over the bound are closed at once.
    const idle = await Promise.all(Array.from({ length: OPERATOR_MAX_CONNECTIONS + 4 }, open));
    const closedEarly = idle.map((socket) => once(socket, 'close').then(() => true));
    await within(Promise.any(closedEarly), 'a connection over the bound is closed', 5_000);
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.stop();
  }
});

test('[P-90] GET /metrics counts admissions, rejections, images and bytes, closes and drops as recorded, and commit times', async () => {
  const server = await startTestServer({ operatorPort: 0, capacity: 1, codes: [950] });
  try {
    const before = metricSamples((await request(server, '/metrics')).body);
    assert.is(before.get('imgcache_sessions_open'), 0);
    assert.is(before.get('imgcache_admissions_total'), 0);

    const peer = await admitted(server);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'get', image: 'sunset.png' });
    const reply = await within(peer.nextJson(MessageType.REPLY), 'the REPLY of the get');
    const { content } = await within(peer.readStream(1), 'the image');
    assert.is(reply.status, 'ok');
    const turnedAway = await RawConnection.open(server.port);
    turnedAway.hello();
    assert.is((await within(turnedAway.nextJson(MessageType.REJECT), 'REJECT')).reason, 'server-full');
    turnedAway.destroy();

    const metrics = await request(server, '/metrics');
    assert.is(metrics.status, 200);
    assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
    const after = metricSamples(metrics.body);
    assert.is(after.get('imgcache_sessions_open'), 1);
    assert.is(after.get('imgcache_admissions_total'), 1);
    assert.is(after.get('imgcache_rejections_total{reason="server-full"}'), 1);
    assert.is(after.get('imgcache_images_served_total'), 1);
    assert.is(after.get('imgcache_bytes_served_total'), content.length);
    const commits = after.get('imgcache_history_commit_seconds_count') ?? 0;
    assert.ok(commits >= 3, `the admissions, the get and the rejection were commits (${commits})`);
    assert.is(after.get('imgcache_history_commit_seconds_bucket{le="+Inf"}'), commits);
    assert.ok((after.get('imgcache_history_commit_seconds_sum') ?? -1) > 0);
    assert.is(after.get('imgcache_history_events_waiting'), 0);
    assert.ok(after.has('process_cpu_seconds_total'), 'the process defaults are there');
    assert.ok(after.has('nodejs_eventloop_lag_seconds'));

    peer.sendJson(MessageType.REQUEST, { id: 2, command: 'exit' });
    await within(peer.nextJson(MessageType.REPLY), 'the REPLY of the exit');
    await within(
      server.waitForEvent((event) => event.type === 'session-closed'),
      'the close on record',
    );
    peer.destroy();
    const silent = await RawConnection.open(server.port);
    silent.destroy(); // gone before its HELLO
    await within(
      server.waitForEvent((event) => event.type === 'connection-dropped'),
      'the drop on record',
    );
    const closed = metricSamples((await request(server, '/metrics')).body);
    assert.is(closed.get('imgcache_sessions_open'), 0);
    assert.is(closed.get('imgcache_sessions_closed_total{reason="client-exit"}'), 1);
    assert.is(closed.get('imgcache_connections_dropped_total{reason="client-closed"}'), 1);
  } finally {
    await server.stop();
  }
});

test('[P-90] two servers in one process keep their metrics apart', async () => {
  const first = await startTestServer({ operatorPort: 0 });
  const second = await startTestServer({ operatorPort: 0 });
  try {
    (await admitted(first)).destroy();
    await within(
      first.waitForEvent((event) => event.type === 'session-closed'),
      'the close on record',
    );
    assert.is(metricSamples((await request(first, '/metrics')).body).get('imgcache_admissions_total'), 1);
    assert.is(metricSamples((await request(second, '/metrics')).body).get('imgcache_admissions_total'), 0);
  } finally {
    await first.stop();
    await second.stop();
  }
});

test('[P-90] /health is 503 history-unavailable while the history cannot record, and 200 again once it can', async () => {
  const server = await startTestServer({ operatorPort: 0 });
  try {
    const lock = await holdWriteLock(server.database);
    try {
      const refused = await RawConnection.open(server.port);
      refused.hello();
      const reject = await within(refused.nextJson(MessageType.REJECT), 'REJECT history-unavailable', 15_000);
      assert.is(reject.reason, 'history-unavailable');
      refused.destroy();
      const down = await request(server, '/health');
      assert.is(down.status, 503);
      assert.equal(JSON.parse(down.body), { status: 'down', reason: 'history-unavailable' });
      const waiting =
        metricSamples((await request(server, '/metrics')).body).get('imgcache_history_events_waiting') ?? 0;
      assert.ok(waiting >= 1, `the rejection is held, waiting (${waiting})`);
    } finally {
      await lock.release();
    }
    // The held rejection is committed by the history's own retry: no client is needed for the node to come back.
    await within(
      server.waitForEvent(
        (event) => event.type === 'connection-rejected' && event.data.reason === 'history-unavailable',
      ),
      'the held rejection on record',
      15_000,
    );
    const up = await request(server, '/health');
    assert.is(up.status, 200);
    assert.equal(JSON.parse(up.body), { status: 'up' });
  } finally {
    await server.stop();
  }
});

test('[P-90] /health is 503 shutting-down as soon as the server begins to stop', async () => {
  const server = await startTestServer({ operatorPort: 0 });
  const peer = await admitted(server);
  const closing = server.stop();
  try {
    const down = await request(server, '/health');
    assert.is(down.status, 503);
    assert.equal(JSON.parse(down.body), { status: 'down', reason: 'shutting-down' });
  } finally {
    peer.destroy();
    await closing;
  }
});

test.run();
