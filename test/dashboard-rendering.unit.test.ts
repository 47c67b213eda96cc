/**
 * The dashboard's pure parts added for the habits of htop and lazygit and for what broke in ordinary use: lines
 * measured in terminal cells and made exactly as wide as their panel, the scroll window, the key bar's click
 * targets, search, sort, the catalog followed on the server's NOTICE, reconnect, signals, the last get, the usage saved for
 * one client, and the preview's colours (dithering, truecolor). No terminal, no server.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { usageFileName, usageOfClient } from '../client/dashboard/effects.ts';
import { colourModeOf, halfBlockLines, paletteColour, quantize, type Rgb } from '../client/dashboard/half-block-art.ts';
import { BINDINGS } from '../client/dashboard/key-bindings.ts';
import { bannerRowsFor, computeLayout } from '../client/dashboard/layout.ts';
import { bannerLines } from '../client/dashboard/panels/banner-panel.ts';
import { commandLineText } from '../client/dashboard/panels/command-line-panel.ts';
import { headerLines } from '../client/dashboard/panels/header-panel.ts';
import { helpLines } from '../client/dashboard/panels/help-panel.ts';
import { imageTableLines, imageTableTitle } from '../client/dashboard/panels/image-table-panel.ts';
import { keyAt, keyBarLayout } from '../client/dashboard/panels/key-bar-panel.ts';
import { logLines } from '../client/dashboard/panels/log-panel.ts';
import { panelLabel } from '../client/dashboard/panels/panel.ts';
import { previewLines } from '../client/dashboard/panels/preview-panel.ts';
import { cellWidth, fit, scrollWindow, styledLine, truncate, wrap } from '../client/dashboard/text.ts';
import { catalogChange } from '../client/dashboard/view-state.ts';
import type { DashboardEvent, ViewState } from '../client/dashboard/view-state.types.ts';
import { BRONZE, feed, HASH_A, keys, listedState, NOW, PLATINUM, QUOTA_20, row } from './helpers/dashboard-fixtures.ts';

const IMAGES = [
  row('checkerboard-dice.png', { bytes: 2_500, modified: '2026-11-20T09:00:00.000Z' }),
  row('mandelbrot.png', { bytes: 180_000, modified: '2026-11-24T09:00:00.000Z' }),
  row('sunset.png', { bytes: 9_600, modified: '2026-11-22T09:00:00.000Z' }),
  row('terrain-large.png', { bytes: 1_700_000, modified: '2026-11-21T09:00:00.000Z' }),
];

function listed(session = PLATINUM, quota = QUOTA_20, images = IMAGES): ViewState {
  return listedState(images, session, quota);
}

/** A tagged line as the terminal shows it: tags gone, braces back. */
function shown(line: string): string {
  return line
    .replace(/\{(?!open\}|close\})[^}]*\}/g, '')
    .replace(/\{open\}/g, '{')
    .replace(/\{close\}/g, '}');
}

test('cells: wide characters take two, combining marks none; cuts never split a wide character', () => {
  assert.is(cellWidth('sunset.png'), 10);
  assert.is(cellWidth('写真.png'), 8);
  assert.is(cellWidth('🌅.png'), 6);
  assert.is(cellWidth('cafe\u0301'), 4);
  assert.is(truncate('写真写真.png', 6), '写真…');
  assert.is(cellWidth(truncate('写真写真.png', 6)), 5, 'a wide character that does not fit is left out whole');
  assert.is(cellWidth(fit('写真写真.png', 6)), 6, 'and the cell it leaves is padded');
  assert.is(fit('写真', 6, true), '  写真');
});

test('styledLine: exactly as wide as asked, whatever its tags, pieces and wide characters', () => {
  const segments = [
    ['›checkerboard-dice.png ', 'inverse'],
    ['2.5 KiB ', undefined],
    ['█████  42%', 'cyan-fg'],
  ] as const;
  for (const width of [1, 10, 30, 40, 41, 42, 60, 80]) {
    const line = styledLine(segments, width);
    assert.is(cellWidth(shown(line)), width, `width ${width}`);
  }
  assert.is(cellWidth(shown(styledLine([['写真 {braces}', 'bold']], 9))), 9);
  assert.is(shown(styledLine([['{x}']], 5)), '{x}  ');
  // The log's wrap breaks within the width in cells and indents what follows.
  const lines = wrap('12:00:00 saved 写真写真写真.png to client-cache/写真写真写真.png', 20, 9);
  for (const line of lines) assert.ok(cellWidth(line) <= 20, line);
  assert.ok(lines.slice(1).every((line) => line.startsWith('         ')));
});

test('every panel line is exactly the panel wide, at 80x24 and 100x30, during a download too', () => {
  let state = listed(PLATINUM, undefined, [...IMAGES, row('写真-sunset.png')]);
  state = feed(state, ...keys('enter'), {
    type: 'download-progress',
    name: 'checkerboard-dice.png',
    received: 1000,
    total: 2500,
  }).state;
  for (const columns of [50, 58, 98]) {
    const lines = imageTableLines(state, columns, 10);
    for (const line of lines) assert.is(cellWidth(shown(line)), columns, `${columns}: "${shown(line)}"`);
    assert.match(shown(lines[1] ?? ''), /›checkerboard-dice\.png .* 40%$/, 'the percentage is on its own row');
  }
  for (const columns of [26, 38]) {
    for (const line of previewLines(state, columns, 13)) assert.is(cellWidth(shown(line)), columns);
  }
  for (const columns of [78, 98]) {
    for (const line of logLines(state, columns, 5)) assert.is(cellWidth(shown(line)), columns);
    for (const line of headerLines(state, columns)) assert.is(cellWidth(shown(line)), columns);
  }
});

test('80 columns: names that fit are whole (the modified column gives way); a label stays on its border', () => {
  const state = listed();
  const lines = imageTableLines(state, 50, 10).map(shown);
  assert.match(lines[0] ?? '', /name +size local/);
  for (const image of IMAGES)
    assert.ok(
      lines.some((line) => line.includes(image.name)),
      image.name,
    );
  assert.match(imageTableLines(state, 98, 10).map(shown)[0] ?? '', 'modified');
  const label = panelLabel('a-rather-long-image-name-for-the-preview-title.png', 28);
  assert.is(cellWidth(label), 28 - 4, 'the label leaves the corner, a line each side');
  assert.match(label, /… {1,2}$/);
});

test('the scroll window moves as little as it can: the cursor walks to the edge first', () => {
  assert.is(scrollWindow(0, 21, 15, 22), 7, 'G: the last row at the bottom');
  assert.is(scrollWindow(7, 20, 15, 22), 7, 'k after G: the view stays');
  assert.is(scrollWindow(7, 7, 15, 22), 7);
  assert.is(scrollWindow(7, 6, 15, 22), 6, 'past the top: the view follows');
  assert.is(scrollWindow(7, 0, 15, 3), 0, 'a short list starts at the top');
});

test('the key bar: only what works, each item a click target; quit always fits', () => {
  const open = listed();
  for (const columns of [80, 100, 60]) {
    const { line, hits } = keyBarLayout(open, columns);
    assert.ok(cellWidth(shown(line)) === columns);
    assert.match(shown(line), 'quit', `${columns} columns keep quit`);
    for (const hit of hits) assert.is(keyAt(open, columns, hit.from), hit.key);
  }
  assert.is(keyAt(open, 80, 0), null, 'the margin presses nothing');
  const over = feed(open, { type: 'connection-closed', message: 'gone' }).state;
  const bar = shown(keyBarLayout(over, 100).line);
  for (const gone of ['get', 'command', 'usage', 'refresh']) assert.not.match(bar, gone);
  assert.match(bar, 'reconnect');
  // A click on a key of the bar is that key.
  const clicked = feed(open, { type: 'mouse', mouse: { kind: 'click-key', key: '?' } }).state;
  assert.is(clicked.focus, 'help');
});

test('/ filters the table as it is typed, keeps the selection, Esc clears; s sorts by size, date, name', () => {
  let state = feed(listed(), ...keys('j', 'j', '/', 's', 'u', 'n')).state;
  assert.is(state.search, 'sun');
  assert.is(state.focus, 'search');
  assert.is(imageTableTitle(state), 'images (1 of 4, "sun")');
  assert.match(shown(imageTableLines(state, 98, 10)[1] ?? ''), '›sunset.png');
  state = feed(state, ...keys('enter')).state;
  assert.is(state.focus, 'images');
  state = feed(state, ...keys('escape')).state;
  assert.is(state.search, '');
  assert.is(state.images[state.selected]?.name, 'sunset.png', 'the selection stays on its image');
  state = feed(state, ...keys('s')).state;
  assert.equal(
    state.images.map((image) => image.name),
    ['terrain-large.png', 'mandelbrot.png', 'sunset.png', 'checkerboard-dice.png'],
  );
  state = feed(state, ...keys('s')).state;
  assert.equal(
    state.images.map((image) => image.name),
    ['mandelbrot.png', 'sunset.png', 'terrain-large.png', 'checkerboard-dice.png'],
  );
  state = feed(state, ...keys('s')).state;
  assert.is(state.sort, 'name');
  assert.is(state.images[state.selected]?.name, 'sunset.png');
});

const CATALOG_CHANGED: DashboardEvent = {
  type: 'notice',
  notice: { kind: 'catalog-changed', message: 'the catalog changed', closing: false },
};

test('[P-70] a catalog-changed NOTICE lists again while connected, one at a time, and logs only what changed', () => {
  const state = listed();
  const first = feed(state, CATALOG_CHANGED);
  assert.equal(first.effects, [{ type: 'list', quiet: true }]);
  const stale = feed(first.state, CATALOG_CHANGED);
  assert.equal(stale.effects, [], 'no second list while one is on its way');
  const after = feed(stale.state, { type: 'list-loaded', images: IMAGES, session: PLATINUM, quota: QUOTA_20 });
  assert.equal(after.effects, [{ type: 'list', quiet: true }], 'a change after the list was asked: listed once more');
  assert.is(after.state.listing, true);
  const quiet = feed(first.state, {
    type: 'list-loaded',
    images: [...IMAGES.slice(1), row('new.png')],
    session: PLATINUM,
    quota: { limit: 20, used: 0, remaining: 20 },
    quiet: true,
  }).state;
  assert.is(quiet.log.at(-1)?.text, 'the catalog changed: new new.png; gone checkerboard-dice.png');
  assert.is(catalogChange(quiet.images, quiet.images), null);
  assert.not.match(
    quiet.log.map((entry) => entry.text).join('\n'),
    'catalog-changed',
    'the NOTICE itself is not logged',
  );
  const closed = feed(state, { type: 'connection-closed', message: 'gone' }).state;
  assert.equal(feed(closed, CATALOG_CHANGED).effects, [], 'no list once the session is over');
});

test('r once the session is over opens a new session; a failed reconnect says why and keeps the screen', () => {
  const over = feed(listed(), { type: 'connection-closed', message: 'gone' }).state;
  const step = feed(over, ...keys('r'));
  assert.equal(step.effects, [{ type: 'reconnect' }]);
  assert.equal(step.state.connection, { kind: 'connecting' });
  assert.is(step.state.banner, null);
  const failed = feed(step.state, { type: 'reconnect-failed', message: 'the server is full' }).state;
  assert.is(failed.connection.kind, 'closed');
  assert.match(failed.banner?.text ?? '', 'the server is full');
  assert.is(failed.images.length, 4, 'the table stays');
  const again = feed(step.state, {
    type: 'connected',
    server: 'imgcache/0.1.0',
    session: { ...PLATINUM, name: 'client-9' },
    quota: { limit: 20, used: 0, remaining: 20 },
  });
  assert.is(again.state.sessions, 2);
  assert.equal(again.effects, [{ type: 'list' }]);
});

test('[P-21] the get that would end the session is asked about first; y sends it, n and Esc do not', () => {
  const empty = listed(BRONZE, { limit: 3, used: 3, remaining: 0 });
  let step = feed(empty, ...keys('enter'));
  assert.equal(step.effects, []);
  assert.is(step.state.focus, 'confirm');
  assert.match(step.state.confirm?.text ?? '', 'y/n: get checkerboard-dice.png?');
  assert.equal(feed(step.state, ...keys('n')).effects, []);
  assert.equal(feed(step.state, ...keys('escape')).effects, []);
  step = feed(step.state, ...keys('y'));
  assert.equal(step.effects, [{ type: 'download', name: 'checkerboard-dice.png' }]);
  // A copy held and current (its file checked first): the answer will be a free not-modified, nothing to ask.
  const copy = { path: 'client-cache/a.png', sha256: 'a'.repeat(64), bytes: 1000, fetchedAt: '2026-11-25T09:30:00Z' };
  const held = listed(BRONZE, { limit: 3, used: 3, remaining: 0 }, [row('a.png', { local: 'current', saved: copy })]);
  step = feed(held, ...keys('enter'));
  assert.equal(step.effects, [{ type: 'check-local', name: 'a.png', before: 'get' }]);
  step = feed(step.state, { type: 'local-checked', name: 'a.png', saved: copy, before: 'get' });
  assert.equal(step.effects, [{ type: 'download', name: 'a.png' }]);
});

test('exit statuses: 0 while open, 6 once the server ended the session, 143 on SIGTERM, 129 on SIGHUP', () => {
  assert.is(feed(listed(), ...keys('q')).state.exit?.status, 0);
  const over = feed(listed(), { type: 'connection-closed', message: 'gone' }).state;
  assert.is(feed(over, ...keys('q')).state.exit?.status, 6);
  assert.is(feed(listed(), { type: 'signal', signal: 'SIGTERM' }).state.exit?.status, 143);
  assert.is(feed(over, { type: 'signal', signal: 'SIGHUP' }).state.exit?.status, 129);
});

test('typed help stays open: blessed reports Enter twice, the second is not a key', () => {
  const typed = 'help'.split('').map((ch): DashboardEvent => ({ type: 'key', key: { full: ch, ch } }));
  const state = feed(listed(), ...keys(':'), ...typed, ...keys('enter', 'return')).state;
  assert.is(state.focus, 'help');
});

test('the log scrolls back and forth; new entries do not move what is being read', () => {
  let state = listed();
  for (let i = 0; i < 10; i++)
    state = feed(state, { type: 'usage-saved', path: `f${i}`, bytes: 1, client: null }).state;
  state = feed(state, ...keys('l', 'k', 'k', 'k')).state;
  assert.is(state.logScroll, 3);
  const before = logLines(state, 78, 3).map(shown);
  state = feed(state, { type: 'usage-saved', path: 'later', bytes: 1, client: null }).state;
  assert.equal(logLines(state, 78, 3).map(shown), before);
  state = feed(state, ...keys('S-g', 'escape')).state;
  assert.is(state.logScroll, 0);
  assert.is(state.focus, 'images');
});

test('Esc leaves the log scroll and the log follows the newest lines again', () => {
  let state = listed();
  for (let i = 0; i < 10; i++)
    state = feed(state, { type: 'usage-saved', path: `f${i}`, bytes: 1, client: null }).state;
  state = feed(state, ...keys('l', 'up', 'up', 'escape')).state;
  assert.is(state.focus, 'images');
  assert.is(state.logScroll, 0, 'not scrolled back any more');
  state = feed(state, ...keys(':', 'l', 'i', 's', 't', 'enter')).state;
  assert.is(state.logScroll, 0);
  assert.match(logLines(state, 78, 3).map(shown).join('\n'), '> list', 'the newest line is shown');
  // The same when the log is left for the help, and after the wheel scrolled it back.
  state = feed(state, ...keys('l', 'up', '?')).state;
  assert.is(state.logScroll, 0);
  state = feed(state, ...keys('escape'), { type: 'mouse', mouse: { kind: 'wheel', panel: 'log', lines: -3 } }).state;
  assert.is(state.focus, 'log', 'the wheel scrolled the log back: it has the keys, Esc leaves');
  state = feed(state, ...keys('escape')).state;
  assert.is(state.logScroll, 0);
});

test('at 80x24 every text is whole: header state, banner, y/n question, help, preview details', () => {
  const at = { limit: 3, used: 3, remaining: 0 };
  const base = { ...listed(PLATINUM, at), address: '127.0.0.1:43567' };
  const layout = computeLayout(80, 24, 0);
  const whole = (text: string, part: string, what: string) => assert.ok(text.includes(part), `${what}: ${text}`);
  const cells = (element: { width: number; height: number }) => ({
    columns: element.width - 2,
    rows: element.height - 2,
  });

  // The y/n question of a get at 0 left, for the longest sample name.
  const asked = feed(base, ...keys('enter')).state;
  whole(
    shown(commandLineText(asked, 80)),
    `get checkerboard-dice.png? 0 requests left: the server ends the session.`,
    'question',
  );

  // The session ended by quota-exhausted: the header's state and the banner, whole, with how to go on.
  const over = feed(asked, ...keys('y'), {
    type: 'request-failed',
    request: 'get',
    image: 'checkerboard-dice.png',
    failure: { kind: 'refused', code: 'quota-exhausted', message: 'the quota of 3 is used up', fatal: true },
  }).state;
  const [header] = headerLines(over, 80).map(shown);
  whole(header ?? '', 'quota exhausted', 'header');
  whole(header ?? '', 'platinum', 'header');
  const banner = bannerLines(over, 80, bannerRowsFor(24)).map(shown);
  assert.ok(banner.length <= 3);
  const said = banner.map((line) => line.trim()).join(' ');
  whole(said, 'and closed the session. Press r to reconnect, q to quit.', 'banner');
  assert.not.match(said, '…');
  const dropped = feed(base, { type: 'connection-closed', message: 'the server closed the connection' }).state;
  whole(shown(headerLines(dropped, 80)[0]), 'connection lost', 'header');

  // The help: every description whole (read column by column), in two columns.
  const help = helpLines('images', 78).map(shown);
  const column = (from: number, to: number) =>
    help
      .map((line) => line.slice(from, to))
      .join(' ')
      .replace(/\s+/g, ' ');
  for (const binding of BINDINGS.images) whole(column(0, 38), binding.description, 'help');
  for (const binding of BINDINGS.command) whole(column(40, 78), binding.description, 'help');
  assert.not.match(help.join('\n'), '…');
  assert.ok(helpLines('images', 78).length + 2 <= 23, 'the help fits 24 rows');

  // The preview's details, in the preview's columns.
  const { columns, rows } = cells(layout.preview);
  const image = { width: 256, height: 256, rgba: new Uint8Array(256 * 256 * 4) };
  const copy = {
    path: 'client-cache/checkerboard-dice.png',
    sha256: HASH_A,
    bytes: 2_500,
    fetchedAt: '2026-11-25T09:30:00Z',
  };
  for (const local of ['current', 'stale', 'absent'] as const) {
    const view: ViewState = {
      ...base,
      images: base.images.map((one, index) => (index === 0 ? { ...one, local, saved: copy } : one)),
      preview: { name: 'checkerboard-dice.png', sha256: HASH_A, status: 'ready', image, error: null },
    };
    const lines = previewLines(view, columns, rows, () => []).map(shown);
    const words = { current: 'current', stale: 'changed on the server', absent: 'not downloaded' }[local];
    whole(lines.join('\n'), '2.4 KiB · 256x256', 'preview');
    whole(lines.join('\n'), 'checkerboard-dice.png', 'preview');
    whole(lines.join('\n'), words, 'preview');
    assert.is(lines.length, rows);
  }
  const notSaved = previewLines(base, columns, rows, () => []).map(shown);
  assert.match(notSaved.join('\n'), /modified \d{4}-\d\d-\d\d \d\d:\d\d *$/m, 'the date whole, without seconds');
});

test('s in a filtered usage view saves that client only, under a name that says so', () => {
  const text = JSON.stringify({
    generatedAt: '2026-11-25T10:00:00.000Z',
    clients: [{ name: 'client-1' }, { name: 'client-2' }],
    rejected: [{ at: 'x' }],
  });
  const one = JSON.parse(usageOfClient(text, 'client-2'));
  assert.equal(one.clients, [{ name: 'client-2' }]);
  assert.equal(one.rejected, []);
  assert.is(usageFileName(new Date(NOW), 'client-2'), 'imgcache-usage-2026-11-25T10-00-00Z-client-2.json');
  assert.is(usageFileName(new Date(NOW)), 'imgcache-usage-2026-11-25T10-00-00Z.json');
});

/**
 * How far a drawing's colours are from the image's, in /255 per channel, as the eye sees them from a normal distance
 * (where dithering does its work): the mean colour of each 2x2 block of pixels, compared.
 */
function areaColourError(grid: readonly (readonly Rgb[])[], drawn: readonly (readonly Rgb[])[]): number {
  let error = 0;
  let areas = 0;
  for (let y = 0; y + 1 < grid.length; y += 2) {
    for (let x = 0; x + 1 < (grid[y]?.length ?? 0); x += 2) {
      const mean = (g: readonly (readonly Rgb[])[], c: number) =>
        ((g[y]?.[x]?.[c] ?? 0) +
          (g[y]?.[x + 1]?.[c] ?? 0) +
          (g[y + 1]?.[x]?.[c] ?? 0) +
          (g[y + 1]?.[x + 1]?.[c] ?? 0)) /
        4;
      error += [0, 1, 2].reduce((sum, c) => sum + Math.abs(mean(grid, c) - mean(drawn, c)), 0) / 3;
      areas++;
    }
  }
  return areas ? error / areas : 0;
}

test('colours: truecolor when COLORTERM says so; 256 colours dithered come closer to a cream the palette lacks', () => {
  assert.is(colourModeOf({ COLORTERM: 'truecolor' }), 'truecolor');
  assert.is(colourModeOf({ COLORTERM: '24bit' }), 'truecolor');
  assert.is(colourModeOf({}), '256');
  const cream: Rgb = [250, 240, 200];
  const grid = Array.from({ length: 16 }, () => Array.from({ length: 16 }, () => cream));
  const nearest = quantize(grid, false).map((line) => line.map(paletteColour));
  const dithered = quantize(grid, true).map((line) => line.map(paletteColour));
  const before = areaColourError(grid, nearest);
  const after = areaColourError(grid, dithered);
  assert.ok(after < before / 2, `dithered ${after.toFixed(1)} against nearest ${before.toFixed(1)}`);
  const image = {
    width: 2,
    height: 2,
    rgba: new Uint8Array([250, 240, 200, 255, 250, 240, 200, 255, 1, 2, 3, 255, 1, 2, 3, 255]),
  };
  const [line] = halfBlockLines(image as never, 2, 1, 'truecolor');
  assert.match(line ?? '', '\x1b[38;2;250;240;200;48;2;1;2;3m');
});

test.run();
