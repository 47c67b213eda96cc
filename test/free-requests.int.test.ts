/**
 * [P-48] [P-49] Requests that cost no quota are bounded: a session past its budget of them is answered `rate-limited`,
 * not fatal, with a retry hint; identical free answers in a row are recorded as repeats of one row, so a flood does
 * not grow the history; and the quota path (a get that transfers) is untouched by either.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { MessageType } from '../src/protocol/index.ts';
import { readHistoryFile } from './helpers/history-file.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

/** Sends the requests in rounds of at most 16 ([P-16]) and returns every answer frame's JSON, in order. */
async function ask(
  raw: RawConnection,
  requests: object[],
): Promise<Array<{ type: number; body: Record<string, unknown> }>> {
  const answers: Array<{ type: number; body: Record<string, unknown> }> = [];
  for (let start = 0; start < requests.length; start += 16) {
    const round = requests.slice(start, start + 16);
    for (const request of round) raw.sendJson(MessageType.REQUEST, request);
    for (let index = 0; index < round.length; index++) {
      const frame = await raw.next();
      if (!frame) throw new Error('the server closed the connection');
      answers.push({ type: frame.type, body: JSON.parse(frame.body.toString('utf8')) });
    }
  }
  return answers;
}

test('[P-48] a flood of free requests is answered rate-limited, not fatal, with retryAfterMs; the session goes on', async () => {
  const server = await startTestServer({ freeRequestBurst: 5, freeRequestsPerSecond: 1 });
  const raw = await RawConnection.admitted(server.port);
  try {
    const requests = Array.from({ length: 12 }, (_, index) =>
      index % 2 === 0 ? { id: index, command: 'list' } : { id: index, command: 'get', image: 'missing.png' },
    );
    const answers = await within(ask(raw, requests), 'the answers');
    const limited = answers.filter((answer) => answer.body.code === 'rate-limited');
    assert.ok(limited.length >= 6, `at most 5 (and what refilled meanwhile) were served, ${limited.length} limited`);
    for (const answer of limited) {
      assert.is(answer.type, MessageType.ERROR);
      assert.is(answer.body.fatal, false);
      const retryAfterMs = answer.body.retryAfterMs as number;
      assert.ok(Number.isInteger(retryAfterMs) && retryAfterMs > 0 && retryAfterMs <= 1000, String(retryAfterMs));
      assert.equal(answer.body.quota, { limit: 3, used: 0, remaining: 3 });
    }
    assert.equal(
      answers.map((answer) => answer.body.id),
      requests.map((request) => request.id),
      'every request answered, in order',
    );
    // A bad request is free too: limited the same way.
    const [bad] = await ask(raw, [{ id: 99, command: 'list', limit: 0 }]);
    assert.is(bad?.body.code, 'rate-limited');
    assert.is(bad?.body.id, 99);
    // Still open: exit is never limited.
    const [bye] = await ask(raw, [{ id: 100, command: 'exit' }]);
    assert.is(bye?.type, MessageType.REPLY);
    assert.is(bye?.body.command, 'exit');
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test('[P-48] [P-21] the quota path is unaffected: with the budget spent, gets still transfer until the quota says no', async () => {
  const server = await startTestServer({ freeRequestBurst: 1, freeRequestsPerSecond: 1 });
  const raw = await RawConnection.admitted(server.port);
  try {
    const answers = await ask(raw, [
      { id: 1, command: 'list' },
      { id: 2, command: 'list' },
    ]);
    assert.is(answers[1]?.body.code, 'rate-limited');
    for (const [id, image] of [
      [3, 'sunset.png'],
      [4, 'checkerboard-dice.png'],
      [5, 'mandelbrot.png'],
    ] as const) {
      raw.sendJson(MessageType.REQUEST, { id, command: 'get', image });
      const reply = await raw.nextJson(MessageType.REPLY);
      assert.is(reply.status, 'ok');
      await raw.readStream(id);
    }
    raw.sendJson(MessageType.REQUEST, { id: 6, command: 'get', image: 'terrain-large.png' });
    const exhausted = await raw.nextJson(MessageType.ERROR);
    assert.is(exhausted.code, 'quota-exhausted');
    assert.is(exhausted.fatal, true);
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test('[P-49] identical refusals in a row are one row with a repeat count, each committed before its answer', async () => {
  const server = await startTestServer({ freeRequestBurst: 1000, freeRequestsPerSecond: 1000 });
  const raw = await RawConnection.admitted(server.port);
  try {
    const count = 200;
    const requests = Array.from({ length: count }, (_, id) => ({ id, command: 'get', image: 'missing.png' }));
    const answers = await within(ask(raw, requests), 'the answers');
    assert.ok(answers.every((answer) => answer.body.code === 'image-not-found'));
    // Every answer was sent after its record was committed: the count is complete as soon as the last one is read.
    const refused = readHistoryFile(server.database).filter((event) => event.type === 'request-refused');
    assert.is(refused.length, 1, 'one row for 200 identical refusals');
    const data = (refused[0]?.data ?? {}) as { repeats?: number; lastRequestId?: number; requestId?: number };
    assert.is(data.requestId, 0);
    assert.is(data.repeats, count - 1);
    assert.is(data.lastRequestId, count - 1);

    // Another answer in between starts a new row; the same one again after it does too.
    await ask(raw, [
      { id: 300, command: 'get', image: 'other.png' },
      { id: 301, command: 'get', image: 'missing.png' },
      { id: 302, command: 'get', image: 'missing.png' },
    ]);
    const after = readHistoryFile(server.database).filter((event) => event.type === 'request-refused');
    assert.is(after.length, 3);
    assert.is((after[2]?.data as { repeats?: number } | undefined)?.repeats, 1);
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test('[P-48] [P-49] a flood over the budget grows the history by a bounded number of rows, not one per request', async () => {
  const server = await startTestServer({ freeRequestBurst: 10, freeRequestsPerSecond: 1 });
  const raw = await RawConnection.admitted(server.port);
  try {
    const count = 480;
    const requests = Array.from({ length: count }, (_, id) => ({ id, command: 'get', image: `missing-${id % 7}.png` }));
    const answers = await within(ask(raw, requests), 'the answers');
    const limited = answers.filter((answer) => answer.body.code === 'rate-limited').length;
    assert.ok(limited >= count - 20, `${limited} of ${count} rate-limited`);
    const rows = readHistoryFile(server.database).filter((event) => event.session !== null);
    // The admission, and one row per refusal served within the budget, each distinct name (no repeat in a row of 7).
    const refused = rows.filter((event) => event.type === 'request-refused');
    assert.is(refused.length, count - limited, `${refused.length} refusal rows for ${count} requests`);
    assert.ok(
      refused.every((row) => (row.data as { code: string }).code === 'image-not-found'),
      'no row of its own for a rate-limited refusal',
    );
    const counted = rows.reduce((sum, row) => sum + ((row.data as { rateLimited?: number }).rateLimited ?? 0), 0);
    assert.is(counted, limited, 'every rate-limited refusal is counted on the row before it');
  } finally {
    raw.destroy();
    await server.stop();
  }
});

test('[P-48] the client library waits out rate-limited answers: revalidating more images than the burst succeeds', async () => {
  const server = await startTestServer({ freeRequestBurst: 2, freeRequestsPerSecond: 50 });
  const client = await ImgcacheClient.connect({ port: server.port });
  try {
    const { images } = await client.list();
    const sunset = images.find((image) => image.name === 'sunset.png');
    assert.ok(sunset);
    const outcomes = await within(
      Promise.all(
        Array.from({ length: 8 }, () =>
          client.getImage('sunset.png', { write: () => undefined }, { have: sunset?.sha256 ?? '' }),
        ),
      ),
      'the revalidations',
    );
    assert.ok(outcomes.every((outcome) => outcome.status === 'not-modified'));
    const limited = server.events.filter(
      (event) => event.type === 'answer-repeated' && event.data.count === 'rateLimited',
    );
    assert.ok(limited.length >= 1, 'some were rate-limited, then asked again');
  } finally {
    client.close();
    await server.stop();
  }
});

test.run();
