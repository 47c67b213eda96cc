/**
 * The dashboard's pure parts without a terminal or a server: the view-state reducer for every kind of reply and key,
 * the command line, the layout at 80x24, the panels' text, and the PNG decoder behind the preview.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { complete, historyBack, historyForward, parseCommand, remember } from '../client/dashboard/command-line.ts';
import { EffectRunner } from '../client/dashboard/effects.ts';
import { computeLayout } from '../client/dashboard/layout.ts';
import { bannerText } from '../client/dashboard/panels/banner-panel.ts';
import { headerLines } from '../client/dashboard/panels/header-panel.ts';
import { imageTableLines } from '../client/dashboard/panels/image-table-panel.ts';
import { keyBarLine } from '../client/dashboard/panels/key-bar-panel.ts';
import { logLines } from '../client/dashboard/panels/log-panel.ts';
import { usageLines } from '../client/dashboard/panels/usage-panel.ts';
import { decodePng } from '../client/dashboard/png-decoder.ts';
import { nextUsageFilter, usageRows } from '../client/dashboard/usage-table.ts';
import { initialViewState } from '../client/dashboard/view-state.ts';
import type { DashboardEvent, Effect, SavedImage, ViewState } from '../client/dashboard/view-state.types.ts';
import type { ImgcacheClient } from '../client/imgcache-client.ts';
import { LocalCache } from '../client/local-cache.ts';
import { ServerError } from '../src/errors.ts';
import { parseUsageDocument } from '../src/protocol/index.ts';
import { encodePng } from '../src/tools/png-encoder.ts';
import { BRONZE, feed, HASH_A, keys, listedState, PLATINUM, QUOTA_20, row } from './helpers/dashboard-fixtures.ts';

const HASH_B = 'b'.repeat(64);

function saved(name: string, sha256 = HASH_A): SavedImage {
  return { path: `client-cache/${name}`, sha256, bytes: 1000, fetchedAt: '2026-11-25T09:30:00.000Z' };
}

function typed(text: string): DashboardEvent[] {
  return [...text].map((ch) => ({ type: 'key', key: { full: ch === ' ' ? 'space' : ch, ch } }));
}

function lastLog(state: ViewState): string {
  return state.log.at(-1)?.text ?? '';
}

/** A platinum session that has listed three images, sunset.png saved and current. */
function listed(session = PLATINUM, quota = QUOTA_20): ViewState {
  return listedState(
    [
      row('checkerboard.png'),
      row('mandelbrot.png'),
      row('sunset.png', { local: 'current', saved: saved('sunset.png') }),
    ],
    session,
    quota,
  );
}

test('[P-12] a WELCOME shows who we are and the quota, and asks for the list', () => {
  const { state, effects } = feed(initialViewState('127.0.0.1:7878', 'client-cache'), {
    type: 'connected',
    server: 'imgcache/0.1.0',
    session: PLATINUM,
    quota: QUOTA_20,
  });
  assert.equal(state.connection, { kind: 'connected' });
  assert.equal(state.identity, PLATINUM);
  assert.equal(effects, [{ type: 'list' }]);
  assert.match(lastLog(state), 'client-7 (code 950, platinum); 20 of 20 image requests left');
  const [first, second] = headerLines(state, 100);
  assert.match(first, 'client-7');
  assert.match(first, 'code 950');
  assert.match(first, 'platinum');
  assert.match(second, '20 of 20 left');
});

test('[P-13] a server-full REJECT ends the program with status 3 and says reason, occupancy and retry hint', () => {
  const { state, effects } = feed(initialViewState('127.0.0.1:7878', 'client-cache'), {
    type: 'rejected',
    reject: {
      reason: 'server-full',
      message: 'the server is at capacity (3/3 sessions); try again later',
      occupancy: { open: 3, capacity: 3 },
      retryAfterMs: 1000,
    },
  });
  assert.is(state.exit?.status, 3);
  const effect = effects[0];
  assert.is(effect?.type, 'quit');
  const message = effect?.type === 'quit' ? (effect.message ?? '') : '';
  assert.match(message, 'rejected the connection (server-full)');
  assert.match(message, 'occupancy: 3 of 3 sessions open');
  assert.match(message, 'try again in 1.0 s');
});

test('[P-10] an unsupported-version REJECT names the versions the server speaks', () => {
  const { state } = feed(initialViewState('h:1', 'c'), {
    type: 'rejected',
    reject: { reason: 'unsupported-version', message: 'no common version', supported: [2, 3] },
  });
  assert.is(state.exit?.status, 3);
  assert.match(state.exit?.message ?? '', 'the server speaks version 2, 3');
});

test('an unreachable server ends the program with status 5 and the reason', () => {
  const { state, effects } = feed(initialViewState('127.0.0.1:1', 'c'), {
    type: 'unreachable',
    message: 'cannot connect to 127.0.0.1:1: connect ECONNREFUSED',
  });
  assert.is(state.exit?.status, 5);
  assert.equal(effects[0]?.type, 'quit');
  assert.match(state.exit?.message ?? '', 'cannot reach the server at 127.0.0.1:1');
});

test('[P-18] a list fills the table with the local state of each image, and previews a saved selection', () => {
  let state = listed();
  assert.equal(
    state.images.map((image) => [image.name, image.local]),
    [
      ['checkerboard.png', 'absent'],
      ['mandelbrot.png', 'absent'],
      ['sunset.png', 'current'],
    ],
  );
  assert.is(state.preview, null, 'the first row has no saved copy: no preview');
  const moved = feed(state, ...keys('j', 'down'));
  state = moved.state;
  assert.is(state.selected, 2);
  assert.equal(moved.effects, [
    { type: 'load-preview', name: 'sunset.png', path: 'client-cache/sunset.png', sha256: HASH_A },
  ]);
  assert.is(state.preview?.status, 'loading');
  // A new list keeps the selection on the same image.
  state = feed(state, {
    type: 'list-loaded',
    images: [row('aaa.png'), ...state.images],
    session: PLATINUM,
    quota: QUOTA_20,
  }).state;
  assert.is(state.images[state.selected]?.name, 'sunset.png');
});

test('arrows and j/k move within the table, Home/End jump, and the selection never leaves it', () => {
  const state = listed();
  assert.is(feed(state, ...keys('up', 'k')).state.selected, 0);
  assert.is(feed(state, ...keys('down', 'j', 'j', 'j', 'down')).state.selected, 2);
  assert.is(feed(state, ...keys('end')).state.selected, 2);
  assert.is(feed(state, ...keys('S-g', 'g')).state.selected, 0);
  assert.is(feed(state, ...keys('pagedown')).state.selected, 2);
});

test('[P-19] Enter downloads the selected image with a progress bar; a second Enter while it runs does nothing', () => {
  let step = feed(listed(), ...keys('j', 'enter'));
  assert.equal(step.effects, [{ type: 'download', name: 'mandelbrot.png' }]);
  step = feed(step.state, { type: 'download-progress', name: 'mandelbrot.png', received: 500, total: 1000 });
  assert.equal(step.state.images[1]?.download, { received: 500, total: 1000 });
  assert.match(imageTableLines(step.state, 60, 10).join('\n'), '50%');
  const again = feed(step.state, ...keys('enter'));
  assert.equal(again.effects, []);
  assert.match(lastLog(again.state), 'downloading already');
});

test('[P-17] a finished download marks the row current, moves the quota gauge and previews the new copy', () => {
  let state = feed(listed(), ...keys('j', 'enter')).state;
  const quota = { limit: 20, used: 1, remaining: 19 };
  const step = feed(
    state,
    { type: 'quota', quota },
    {
      type: 'download-finished',
      name: 'mandelbrot.png',
      outcome: 'downloaded',
      saved: saved('mandelbrot.png', HASH_B),
      quota,
    },
  );
  state = step.state;
  const image = state.images[1];
  assert.is(image?.local, 'current');
  assert.is(image?.download, null);
  assert.is(image?.sha256, HASH_B);
  assert.equal(state.quota, quota);
  assert.match(headerLines(state, 100)[1], '19 of 20 left');
  assert.match(lastLog(state), 'saved mandelbrot.png');
  assert.match(lastLog(state), '19 of 20 image requests left');
  assert.equal(step.effects, [
    { type: 'load-preview', name: 'mandelbrot.png', path: 'client-cache/mandelbrot.png', sha256: HASH_B },
  ]);
});

test('[P-16] pipelined gets saved out of order: a save finishing late does not put back an older quota', () => {
  const last = { limit: 3, used: 3, remaining: 0 };
  const earlier = { limit: 3, used: 2, remaining: 1 };
  const state = feed(
    listed(BRONZE, { limit: 3, used: 0, remaining: 3 }),
    { type: 'quota', quota: earlier },
    { type: 'quota', quota: last },
    {
      type: 'download-finished',
      name: 'sunset.png',
      outcome: 'downloaded',
      saved: saved('sunset.png'),
      quota: last,
    },
    {
      type: 'download-finished',
      name: 'mandelbrot.png',
      outcome: 'downloaded',
      saved: saved('mandelbrot.png'),
      quota: earlier,
    },
  ).state;
  assert.equal(state.quota, last, 'the quota of the last answer on the wire stays');
  assert.match(headerLines(state, 100)[1], '0 of 3 left');
  assert.match(lastLog(state), '1 of 3 image requests left', 'each save logs the quota its own answer carried');
});

test('[P-35] a get answered not-modified says the copy is current and that no request was used', () => {
  const state = feed(listed(), ...keys('end', 'enter'), {
    type: 'download-finished',
    name: 'sunset.png',
    outcome: 'not-modified',
    saved: saved('sunset.png'),
    quota: QUOTA_20,
  }).state;
  assert.match(lastLog(state), 'sunset.png is current already');
  assert.match(lastLog(state), 'no request used');
});

test('[P-21] the last request of the quota warns that the next get ends the session', () => {
  const state = feed(listed(BRONZE, { limit: 3, used: 2, remaining: 1 }), {
    type: 'quota',
    quota: { limit: 3, used: 3, remaining: 0 },
  }).state;
  assert.is(state.connection.kind, 'connected');
  assert.is(state.banner?.tone, 'warn');
  assert.match(bannerText(state) ?? '', '0 of 3 image requests left');
  assert.match(headerLines(state, 100)[1], '0 of 3 left');
});

test('[P-21] quota-exhausted ends the session in words and keeps the screen until the person quits', () => {
  const exhausted = { limit: 3, used: 3, remaining: 0 };
  let step = feed(
    listed(BRONZE, exhausted),
    ...keys('enter'),
    {
      type: 'request-failed',
      request: 'get',
      image: 'checkerboard.png',
      failure: { kind: 'refused', code: 'quota-exhausted', message: 'the quota of 3 is used up', fatal: true },
    },
    { type: 'connection-closed', message: 'the server closed the connection' },
  );
  assert.equal(
    step.effects.filter((effect) => effect.type === 'quit'),
    [],
  );
  assert.equal(step.state.connection, { kind: 'closed', why: 'quota exhausted' });
  assert.is(step.state.images[0]?.download, null);
  const banner = bannerText(step.state) ?? '';
  assert.match(banner, 'Quota exhausted');
  assert.match(banner, 'checkerboard.png');
  assert.match(banner, 'Press r to reconnect, q to quit');
  assert.match(headerLines(step.state, 100)[0], 'closed: quota exhausted');
  assert.match(headerLines(step.state, 80)[0], 'bronze', 'at 80 columns the reason is cut, never the tier');
  // Moving around still works; Enter says why nothing happens; q quits with the reason printed.
  step = feed(step.state, ...keys('j', 'enter'));
  assert.is(step.state.selected, 1);
  assert.equal(step.effects, []);
  assert.match(lastLog(step.state), 'cannot get mandelbrot.png: quota exhausted');
  step = feed(step.state, ...keys('q'));
  assert.is(step.state.exit?.status, 6, 'the server ended the session: status 6');
  assert.match(step.state.exit?.message ?? '', 'Quota exhausted');
});

test('[P-21] when the close arrives before the refused get, the banner still says quota exhausted', () => {
  const state = feed(
    listed(BRONZE, { limit: 3, used: 3, remaining: 0 }),
    { type: 'connection-closed', message: 'the server closed the connection' },
    {
      type: 'request-failed',
      request: 'get',
      image: 'sunset.png',
      failure: { kind: 'refused', code: 'quota-exhausted', message: 'used up', fatal: true },
    },
  ).state;
  assert.match(bannerText(state) ?? '', 'Quota exhausted');
  assert.equal(state.connection, { kind: 'closed', why: 'quota exhausted' });
});

test('[P-26] a refusal that is not fatal is logged and the session goes on', () => {
  const state = feed(listed(), {
    type: 'request-failed',
    request: 'get',
    image: 'nope.png',
    failure: { kind: 'refused', code: 'image-not-found', message: "no image named 'nope.png'", fatal: false },
  }).state;
  assert.is(state.connection.kind, 'connected');
  assert.is(state.banner, null);
  assert.is(lastLog(state), "refused get nope.png: no image named 'nope.png' (image-not-found)");
  assert.is(state.log.at(-1)?.tone, 'error');
});

test('[P-26] another fatal ERROR ends the session with its code', () => {
  const state = feed(listed(), {
    type: 'request-failed',
    request: 'list',
    failure: { kind: 'refused', code: 'history-unavailable', message: 'the history is unavailable', fatal: true },
  }).state;
  assert.equal(state.connection, { kind: 'closed', why: 'history-unavailable' });
  assert.match(bannerText(state) ?? '', 'history-unavailable');
});

test('[P-28] a closing shutting-down NOTICE says the server is shutting down; the screen stays', () => {
  const { state, effects } = feed(
    listed(),
    {
      type: 'notice',
      notice: { kind: 'shutting-down', message: 'the server is shutting down', closing: true },
    },
    { type: 'connection-closed', message: 'the server closed the connection' },
  );
  assert.equal(effects, []);
  assert.equal(state.connection, { kind: 'closed', why: 'the server shut down' });
  assert.match(bannerText(state) ?? '', 'The server is shutting down');
  assert.match(state.log.map((entry) => entry.text).join('\n'), 'server: the server is shutting down (shutting-down)');
  assert.is(state.images.length, 3, 'the table stays');
});

test('[P-27] a closing idle-timeout NOTICE says calmly how to go on; any action that needs the server reconnects', () => {
  const state = feed(listed(), {
    type: 'notice',
    notice: { kind: 'idle-timeout', message: 'idle for 300000 ms', closing: true },
  }).state;
  assert.match(bannerText(state) ?? '', 'without a request; press r or any command to reconnect');
  assert.is(state.banner?.tone, 'info');
  assert.equal(state.connection, { kind: 'closed', why: 'idle', idle: true });
  // Enter: a new session, and the get once it is there
  const enter = feed(state, { type: 'key', key: { full: 'enter' } });
  assert.equal(enter.effects, [{ type: 'reconnect' }]);
  assert.is(enter.state.connection.kind, 'connecting');
  const back = feed(enter.state, {
    type: 'connected',
    server: 'imgcache/0.1.0',
    session: { name: 'client-9', code: 950, tier: 'platinum', canReadUsage: true },
    quota: { limit: 20, used: 0, remaining: 20 },
  });
  assert.equal(
    back.effects.map((effect) => effect.type),
    ['list', 'download'],
  );
  // q after an idle close: nothing went wrong, status 0
  assert.is(feed(state, { type: 'key', key: { full: 'q' } }).state.exit?.status, 0);
});

test('a dropped connection says so; keys keep working until q', () => {
  let state = feed(listed(), { type: 'connection-closed', message: 'connection error: read ECONNRESET' }).state;
  assert.equal(state.connection, { kind: 'closed', why: 'connection lost' });
  assert.match(bannerText(state) ?? '', 'The connection dropped: connection error: read ECONNRESET.');
  state = feed(state, ...keys('j', 'enter')).state;
  assert.is(state.selected, 1);
  assert.match(lastLog(state), 'connection lost');
  assert.equal(feed(state, ...keys('escape')).effects, [], 'Esc never quits');
  const quit = feed(state, ...keys('q'));
  assert.equal(quit.effects, [
    {
      type: 'quit',
      status: 6,
      message: 'imgcache: The connection dropped: connection error: read ECONNRESET.',
    },
  ]);
});

test('a request that fails on a closed connection explains it once, without hiding a stated reason', () => {
  const state = feed(
    listed(),
    { type: 'notice', notice: { kind: 'shutting-down', message: 'bye', closing: true } },
    {
      type: 'request-failed',
      request: 'get',
      image: 'sunset.png',
      failure: { kind: 'closed', message: 'the server closed the connection: bye' },
    },
  ).state;
  assert.match(bannerText(state) ?? '', 'shutting down');
});

test('events after quitting change nothing on the screen', () => {
  const state = feed(listed(), ...keys('q'), { type: 'connection-closed', message: 'closed' }, ...keys('j')).state;
  assert.is(state.banner, null);
  assert.is(state.selected, 0);
  assert.is(state.exit?.status, 0);
});

test('q and Ctrl-C quit with status 0 while the session is open; Esc is back, never quit', () => {
  for (const key of ['q', 'C-c']) {
    const { effects } = feed(listed(), ...keys(key));
    assert.equal(effects, [{ type: 'quit', status: 0, message: null }], key);
  }
  // Esc twice to leave the command line (a habit) leaves the program running.
  const { state, effects } = feed(listed(), ...keys(':', 'escape', 'escape', 'escape'));
  assert.equal(effects, []);
  assert.is(state.exit, null);
  assert.is(state.focus, 'images');
});

test('[P-22] u for a tier without the right explains that usage is a platinum right, asking nothing', () => {
  const { state, effects } = feed(listed(BRONZE), ...keys('u'));
  assert.equal(effects, []);
  assert.is(state.main, 'images');
  assert.match(lastLog(state), 'usage is a platinum right');
  assert.match(lastLog(state), 'bronze');
});

test('[P-22] a typed usage from a bronze session asks the server, and shows its refusal', () => {
  let step = feed(listed(BRONZE), ...keys(':'), ...typed('usage'), ...keys('enter'));
  assert.equal(step.effects, [{ type: 'usage' }]);
  step = feed(step.state, {
    type: 'request-failed',
    request: 'usage',
    failure: { kind: 'refused', code: 'usage-forbidden', message: 'the bronze tier may not read usage', fatal: false },
  });
  assert.is(lastLog(step.state), 'refused usage: the bronze tier may not read usage (usage-forbidden)');
  assert.is(step.state.main, 'images');
  assert.is(step.state.connection.kind, 'connected');
});

const USAGE_TEXT = JSON.stringify({
  generatedAt: '2026-11-25T10:05:00.000Z',
  clients: [
    {
      name: 'client-1',
      code: 108,
      tier: 'bronze',
      connectedAt: '2026-11-25T10:00:00.000Z',
      disconnectedAt: null,
      closeReason: null,
      quota: { limit: 3, used: 1 },
      requests: [{ image: 'sunset.png', at: '2026-11-25T10:00:05.000Z', outcome: 'served', bytes: 9802 }],
      someFutureField: true,
    },
    {
      name: 'client-7',
      code: 950,
      tier: 'platinum',
      connectedAt: '2026-11-25T10:01:00.000Z',
      disconnectedAt: null,
      closeReason: null,
      quota: { limit: 20, used: 0 },
      requests: [],
    },
  ],
  rejected: [{ at: '2026-11-25T10:00:01.000Z', reason: 'server-full', occupancy: { open: 3, capacity: 3 } }],
});

test('[P-32] u for platinum opens the usage view, which fills as a table filterable by client and saves', () => {
  let step = feed(listed(), ...keys('u'));
  assert.equal(step.effects, [{ type: 'usage' }]);
  assert.is(step.state.main, 'usage');
  assert.match(usageLines(step.state, 96, 10).join('\n'), 'reading the usage history');
  step = feed(step.state, {
    type: 'usage-loaded',
    text: USAGE_TEXT,
    document: parseUsageDocument(JSON.parse(USAGE_TEXT)),
  });
  const table = usageLines(step.state, 96, 10).join('\n');
  assert.match(table, 'client');
  assert.match(table, 'tier');
  assert.match(table, 'sunset.png');
  assert.match(table, 'client-7');
  assert.match(table, '(no image requests)');
  step = feed(step.state, ...keys('f'));
  assert.is(step.state.usage.filter, 'client-1');
  assert.not.match(usageLines(step.state, 96, 10).join('\n'), 'client-7');
  step = feed(step.state, ...keys('f'));
  assert.is(step.state.usage.filter, 'client-7');
  step = feed(step.state, ...keys('a'));
  assert.is(step.state.usage.filter, null);
  step = feed(step.state, ...keys('s'));
  assert.equal(step.effects, [{ type: 'save-usage', text: USAGE_TEXT, client: null }]);
  assert.match(lastLog(step.state), 'saving the usage of every client');
  step = feed(step.state, { type: 'usage-saved', path: 'imgcache-usage-x.json', bytes: 700, client: null });
  assert.match(lastLog(step.state), 'usage of every client saved to imgcache-usage-x.json');
  step = feed(step.state, ...keys('escape'));
  assert.is(step.state.main, 'images', 'Esc in the usage view goes back to the images, it does not quit');
  assert.equal(step.effects, []);
});

test('[P-32] a session without requests that has closed shows closed, with its reason, whole at 80 columns', () => {
  const text = JSON.stringify({
    ...JSON.parse(USAGE_TEXT),
    clients: [
      ...JSON.parse(USAGE_TEXT).clients,
      {
        name: 'client-9',
        code: 950,
        tier: 'platinum',
        connectedAt: '2026-11-25T10:02:00.000Z',
        disconnectedAt: '2026-11-25T10:07:00.000Z',
        closeReason: 'idle-timeout',
        quota: { limit: 20, used: 0 },
        requests: [],
      },
    ],
  });
  const document = parseUsageDocument(JSON.parse(text));
  assert.equal(
    usageRows(document, null).map((usage) => [usage.client, usage.outcome]),
    [
      ['client-1', 'served'],
      ['client-7', 'connected'],
      ['client-9', 'closed: idle-timeout'],
    ],
  );
  const state = feed(listed(), ...keys('u'), { type: 'usage-loaded', text, document }).state;
  const table = usageLines(state, 78, 10).map((line) => line.replace(/\{[^}]*\}/g, ''));
  assert.match(table.find((line) => line.includes('client-9')) ?? '', /closed: idle-timeout *$/);
  assert.match(table.find((line) => line.includes('client-7')) ?? '', /connected *$/);
});

test('[P-32] usage rows: one per request, one for a client without requests; filters cycle and come back', () => {
  const document = parseUsageDocument(JSON.parse(USAGE_TEXT));
  assert.equal(
    usageRows(document, null).map((usage) => [usage.client, usage.image, usage.outcome]),
    [
      ['client-1', 'sunset.png', 'served'],
      ['client-7', null, 'connected'],
    ],
  );
  assert.is(nextUsageFilter(document, null), 'client-1');
  assert.is(nextUsageFilter(document, 'client-1'), 'client-7');
  assert.is(nextUsageFilter(document, 'client-7'), null);
  assert.throws(() => parseUsageDocument({ nothing: true }));
});

test('the command line runs the seed commands: list, get <image> ..., help, exit, and refuses others', () => {
  let step = feed(listed(), ...keys(':'), ...typed('list'), ...keys('enter'));
  assert.equal(step.effects, [{ type: 'list' }]);
  assert.is(step.state.focus, 'images', 'focus goes back to the table');
  step = feed(step.state, ...keys(':'), ...typed('get sunset.png mandelbrot.png'), ...keys('enter'));
  assert.equal(step.effects, [
    { type: 'download', name: 'sunset.png' },
    { type: 'download', name: 'mandelbrot.png' },
  ]);
  step = feed(step.state, ...keys(':'), ...typed('fly'), ...keys('enter'));
  assert.match(lastLog(step.state), "unknown command 'fly'");
  step = feed(step.state, ...keys(':'), ...typed('help'), ...keys('enter'));
  assert.is(step.state.focus, 'help');
  step = feed(step.state, ...keys('x'));
  assert.is(step.state.focus, 'images', 'any key closes the help');
  step = feed(step.state, ...keys(':'), ...typed('exit'), ...keys('enter'));
  assert.equal(step.effects, [{ type: 'quit', status: 0, message: null }]);
});

test('the command line: up/down browse the history, Tab completes image names, Esc cancels', () => {
  let state = feed(listed(), ...keys(':'), ...typed('list'), ...keys('enter')).state;
  state = feed(state, ...keys(':'), ...typed('get sunset.png'), ...keys('enter')).state;
  state = feed(state, ...keys(':'), ...typed('us')).state;
  state = feed(state, ...keys('up')).state;
  assert.is(state.command.text, 'get sunset.png');
  state = feed(state, ...keys('up', 'up')).state;
  assert.is(state.command.text, 'list');
  state = feed(state, ...keys('down', 'down')).state;
  assert.is(state.command.text, 'us', 'past the newest entry comes back what was typed');
  state = feed(state, ...keys('C-u'), ...typed('get man'), ...keys('tab')).state;
  assert.is(state.command.text, 'get mandelbrot.png ');
  state = feed(state, ...keys('backspace', 'escape')).state;
  assert.is(state.focus, 'images');
  assert.is(state.command.text, '');
  // q typed on the command line is a letter, not quit.
  const letter = feed(state, ...keys(':', 'q'));
  assert.equal(letter.effects, []);
  assert.is(letter.state.command.text, 'q');
});

test('command-line helpers: parse, complete, remember', () => {
  assert.equal(parseCommand('  get  a.png b.png '), { kind: 'get', images: ['a.png', 'b.png'] });
  assert.equal(parseCommand('get'), { kind: 'invalid', message: 'get needs an image name' });
  assert.equal(parseCommand('list now').kind, 'invalid');
  assert.equal(parseCommand('filter client-3'), { kind: 'filter', client: 'client-3' });
  assert.equal(complete('g', [], []), { text: 'get ', candidates: [] });
  assert.equal(complete('get s', ['sunset.png', 'sunrise.png', 'moon.png'], []), {
    text: 'get sun',
    candidates: ['sunset.png', 'sunrise.png'],
  });
  assert.equal(complete('get x', ['sunset.png'], []), { text: 'get x', candidates: [] });
  assert.equal(complete('filter c', [], ['client-1']), { text: 'filter client-1 ', candidates: [] });
  let line = remember(remember({ text: '', history: [], browsing: null, draft: '' }, 'list'), 'list');
  assert.equal(line.history, ['list'], 'the same line twice in a row is remembered once');
  line = historyBack({ ...line, text: 'draft' });
  assert.is(line.text, 'list');
  assert.is(historyForward(line).text, 'draft');
});

test('? opens the help; any key closes it; Ctrl-C quits from it', () => {
  const open = feed(listed(), ...keys('?')).state;
  assert.is(open.focus, 'help');
  assert.is(feed(open, ...keys('j')).state.focus, 'images');
  assert.is(feed(open, ...keys('C-c')).state.exit?.status, 0);
});

test('a preview that arrives for an image no longer selected is dropped', () => {
  let state = feed(listed(), ...keys('end')).state;
  state = feed(state, ...keys('up')).state;
  assert.is(state.preview, null);
  state = feed(state, {
    type: 'preview-loaded',
    name: 'sunset.png',
    sha256: HASH_A,
    image: { width: 1, height: 1, rgba: new Uint8Array(4) },
  }).state;
  assert.is(state.preview, null);
  state = feed(state, ...keys('end'), {
    type: 'preview-failed',
    name: 'sunset.png',
    sha256: HASH_A,
    message: 'cannot preview sunset.png: not a PNG file',
  }).state;
  assert.is(state.preview?.status, 'failed');
  assert.match(lastLog(state), 'cannot preview sunset.png: not a PNG file');
});

test('the log keeps its newest entries whole, wrapped to the panel', () => {
  let state = listed();
  for (let i = 0; i < 300; i++) state = feed(state, ...keys(':'), ...typed(`fly${i}`), ...keys('enter')).state;
  assert.is(state.log.length, 200, 'the log is bounded');
  const lines = logLines(state, 40, 4);
  assert.is(lines.length, 4);
  assert.match(lines.join('\n'), 'fly299');
});

test('80x24 leaves room for every panel; the key bar fits 80 columns', () => {
  for (const banner of [0, 2]) {
    const layout = computeLayout(80, 24, banner);
    for (const [name, rect] of Object.entries(layout)) {
      if (name === 'banner' && banner === 0) continue;
      assert.ok(rect.width > 0 && rect.height > 0, `${name} has room with a banner of ${banner}`);
      assert.ok(rect.top >= 0 && rect.top + rect.height <= 24, `${name} is on the screen`);
    }
    assert.ok(layout.table.height >= 6, 'the table shows a few rows');
  }
  const plain = keyBarLine(listed(), 80).replace(/\{[^}]*\}/g, '');
  assert.match(plain, 'quit');
  assert.ok(plain.length <= 80);
});

test('[P-24] the preview decoder reads back exactly the pixels the PNG encoder wrote', async () => {
  const width = 7;
  const height = 5;
  const rgb = new Uint8Array(width * height * 3).map((_, i) => (i * 37) % 256);
  const image = await decodePng(encodePng(width, height, rgb));
  assert.is(image.width, width);
  assert.is(image.height, height);
  for (let pixel = 0; pixel < width * height; pixel++) {
    assert.equal(
      [...image.rgba.subarray(pixel * 4, pixel * 4 + 4)],
      [rgb[pixel * 3], rgb[pixel * 3 + 1], rgb[pixel * 3 + 2], 255],
    );
  }
  await decodePng(Buffer.from('not a png')).then(
    () => assert.unreachable('a text file is not a PNG'),
    (error: Error) => assert.match(error.message, 'not a PNG'),
  );
});

/** `png` with its IDAT data replaced by `transform` of the inflated scanlines (CRCs are left as they were). */
function withScanlines(png: Buffer, transform: (scanlines: Buffer) => void): Buffer {
  const parts: Buffer[] = [png.subarray(0, 8)];
  for (let offset = 8; offset < png.length; ) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const chunk = png.subarray(offset, offset + 12 + length);
    if (type === 'IDAT') {
      const scanlines = inflateSync(chunk.subarray(8, 8 + length));
      transform(scanlines);
      const data = deflateSync(scanlines);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(data.length, 0);
      head.write('IDAT', 4, 'latin1');
      parts.push(head, data, chunk.subarray(8 + length));
    } else parts.push(chunk);
    offset += 12 + length;
  }
  return Buffer.concat(parts);
}

test('the preview decoder refuses a row whose filter type PNG does not define, naming it and the row', async () => {
  const width = 3;
  const height = 2;
  const png = encodePng(width, height, new Uint8Array(width * height * 3).fill(9));
  const rowBytes = width * 3 + 1;
  assert.is((await decodePng(withScanlines(png, () => {}))).width, width, 'the rebuilt PNG itself decodes');
  await decodePng(
    withScanlines(png, (scanlines) => {
      scanlines[rowBytes] = 5;
    }),
  ).then(
    () => assert.unreachable('filter type 5 does not exist'),
    (error: Error) => assert.is(error.message, 'unknown filter type 5 on row 1'),
  );
});

/**
 * The effect runner on a real cache folder holding sunset.png, with a client that only lists it; `body` gets the
 * folder, the file's hash and a way to run an effect and collect the events it reports. The folder is removed after.
 */
async function withRunner(
  body: (held: {
    file: string;
    sha256: string;
    run: (effect: Effect, count?: number) => Promise<DashboardEvent[]>;
  }) => Promise<void>,
): Promise<void> {
  const folder = mkdtempSync(path.join(tmpdir(), 'imgcache-dashboard-local-'));
  try {
    const file = path.join(folder, 'sunset.png');
    writeFileSync(file, 'pixels');
    const sha256 = createHash('sha256').update('pixels').digest('hex');
    const images = [{ name: 'sunset.png', bytes: 6, sha256, modified: '2026-11-25T09:00:00.000Z' }];
    const client = { list: async () => ({ images, session: PLATINUM, quota: QUOTA_20 }) };
    const events: DashboardEvent[] = [];
    const runner = new EffectRunner({
      client: client as unknown as ImgcacheClient,
      cache: await LocalCache.open(folder, '127.0.0.1:7878'),
      usageFolder: path.join(folder, 'usage'),
      dispatch: (event) => events.push(event),
      quit: () => {},
    });
    /** Runs `effect` and waits (bounded) for the `count`th event since. */
    const run = async (effect: Effect, count = 1) => {
      const start = events.length;
      runner.run(effect);
      for (let turn = 0; turn < 200 && events.length < start + count; turn++)
        await new Promise((go) => setTimeout(go, 5));
      return events.slice(start);
    };
    await body({ file, sha256, run });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

test('the outcomes of pipelined gets are told in the order asked, though a save is told only once its file is renamed', async () => {
  let saveA: () => void = () => {};
  const renamedA = new Promise<void>((resolve) => {
    saveA = resolve;
  });
  const cache = {
    fetch: async (_client: unknown, name: string) => {
      if (name === 'missing.png') {
        throw new ServerError({ id: 2, code: 'image-not-found', message: 'no image missing.png', fatal: false });
      }
      await renamedA; // the answer came first, the rename of its file later
      const entry = { sha256: HASH_A, bytes: 1000, fetchedAt: '2026-11-25T09:30:00.000Z' };
      return { status: 'downloaded', path: `client-cache/${name}`, entry, quota: QUOTA_20 };
    },
  };
  const events: DashboardEvent[] = [];
  let told: () => void = () => {};
  const bothTold = new Promise<void>((resolve) => {
    told = resolve;
  });
  const runner = new EffectRunner({
    client: {} as unknown as ImgcacheClient,
    cache: cache as unknown as LocalCache,
    usageFolder: 'usage',
    dispatch: (event) => {
      events.push(event);
      if (events.length === 2) told();
    },
    quit: () => {},
  });
  runner.run({ type: 'download', name: 'a.png' });
  runner.run({ type: 'download', name: 'missing.png' });
  await new Promise((resolve) => setImmediate(resolve)); // the refusal has settled; the save waits for its rename
  assert.equal(events, [], 'the refusal of the second is not told before the first');
  saveA();
  await bothTold;
  assert.equal(
    events.map((event) => [event.type, 'name' in event ? event.name : 'image' in event ? event.image : null]),
    [
      ['download-finished', 'a.png'],
      ['request-failed', 'missing.png'],
    ],
  );
});

test('the local state follows the files: r checks the folder again, as the CLI list does', () =>
  withRunner(async ({ file, sha256, run }) => {
    let [event] = await run({ type: 'list' });
    assert.is(event?.type === 'list-loaded' && event.images[0]?.local, 'current');
    rmSync(file);
    [event] = await run({ type: 'list' });
    assert.ok(event?.type === 'list-loaded');
    assert.is(event.images[0]?.local, 'absent', 'a file deleted behind our back is not current');
    assert.is(event.images[0]?.saved, null, 'nor saved');
    const fresh = await LocalCache.open(path.dirname(file), '127.0.0.1:7878');
    assert.is(fresh.stateOf({ name: 'sunset.png', sha256 }), 'absent', 'what a fresh open (the CLI list) says');
  }));

test('a preview of a file gone from the folder says so in a sentence, and the row follows', () =>
  withRunner(async ({ file, sha256, run }) => {
    rmSync(file);
    const [failed, checked] = await run({ type: 'load-preview', name: 'sunset.png', path: file, sha256 }, 2);
    assert.ok(failed?.type === 'preview-failed');
    assert.is(failed.message, `sunset.png is not in the cache folder any more (${file})`);
    assert.not.match(failed.message, 'ENOENT');
    assert.equal(checked, { type: 'local-checked', name: 'sunset.png', saved: null });
    const shown = feed(
      listed(),
      ...keys('S-g'),
      { type: 'preview-failed', name: 'sunset.png', sha256: HASH_A, message: failed.message },
      checked as DashboardEvent,
    ).state;
    assert.ok(
      shown.log.some((entry) => entry.text === failed.message),
      'the log says the sentence',
    );
    assert.is(shown.images[2]?.local, 'absent');
    assert.is(shown.preview, null, 'no preview of a file that is not there');
  }));

test('[P-21] at 0 left, Enter on a row called current checks the file first: gone, the y/n question is asked', () => {
  const empty = listed(BRONZE, { limit: 3, used: 3, remaining: 0 });
  let step = feed(empty, ...keys('S-g', 'enter'));
  assert.equal(
    step.effects.slice(1),
    [{ type: 'check-local', name: 'sunset.png', before: 'get' }],
    'no get before the check',
  );
  step = feed(step.state, { type: 'local-checked', name: 'sunset.png', saved: null, before: 'get' });
  assert.equal(step.effects, []);
  assert.is(step.state.focus, 'confirm', 'the get would end the session: asked first');
  assert.is(step.state.images[2]?.local, 'absent');
  assert.is(step.state.images[2]?.saved, null);
  assert.ok(step.state.log.some((entry) => entry.text === 'sunset.png is not in the cache folder any more'));
  // Still there: the free revalidation goes ahead.
  const still = feed(empty, ...keys('S-g', 'enter'), {
    type: 'local-checked',
    name: 'sunset.png',
    saved: saved('sunset.png'),
    before: 'get',
  });
  assert.equal(still.effects.at(-1), { type: 'download', name: 'sunset.png' });
});

test('a get that failed has its file checked again', () => {
  const failed = feed(listed(), ...keys('S-g', 'enter'), {
    type: 'request-failed',
    request: 'get',
    image: 'sunset.png',
    failure: { kind: 'failed', message: 'the stream was cut short' },
  });
  assert.equal(failed.effects.slice(-2), [
    { type: 'download', name: 'sunset.png' },
    { type: 'check-local', name: 'sunset.png' },
  ]);
});

test.run();
