/**
 * The dashboard end to end, for the habits its users bring from htop, lazygit and k9s, and for what broke in
 * ordinary use: lines exactly as wide as their panel (during and after a download, at 80x24 and 100x30), Esc,
 * the key bar once the session is over, reconnect, progress of a small image through a slow link, the mouse, `/`,
 * the catalog followed without r, the last get, the exit status and the terminal title. The real
 * `imgcache` command runs in a real terminal (tmux) against a real server on a free port.
 */
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cellWidth } from '../client/dashboard/text.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { DashboardTerminal, tableRow } from './helpers/dashboard-terminal.ts';
import { copySampleImages } from './helpers/live-images.ts';
import { SAMPLE_IMAGES } from './helpers/test-server.ts';
import { SHELL_TITLE } from './helpers/tmux.ts';

const dashboards = new DashboardTerminal('habits');
const { terminal, closers } = dashboards;
const server = (options: Parameters<typeof dashboards.server>[0]) => dashboards.server(options);
const startDashboard = (...args: Parameters<typeof dashboards.startDashboard>) => dashboards.startDashboard(...args);

/**
 * A slow link: a proxy that passes what the client sends at once, and what the server sends `chunkBytes` at a time,
 * one piece per `everyMs`, so a download of a few KiB takes a visible while.
 */
async function slowLink(port: number, chunkBytes: number, everyMs: number): Promise<number> {
  const proxy = net.createServer((downstream) => {
    const upstream = net.connect({ host: '127.0.0.1', port });
    const queue: Buffer[] = [];
    let ended = false;
    const timer = setInterval(() => {
      let left = chunkBytes;
      const pieces: Buffer[] = [];
      while (left > 0 && queue.length > 0) {
        const head = queue[0] as Buffer;
        const piece = head.subarray(0, left);
        pieces.push(piece);
        left -= piece.length;
        if (piece.length === head.length) queue.shift();
        else queue[0] = head.subarray(piece.length);
      }
      if (pieces.length > 0 && !downstream.destroyed) downstream.write(Buffer.concat(pieces));
      if (ended && queue.length === 0) {
        clearInterval(timer);
        downstream.end();
      }
    }, everyMs);
    upstream.on('data', (chunk: Buffer) => queue.push(chunk));
    upstream.on('end', () => {
      ended = true;
    });
    upstream.on('error', () => downstream.destroy());
    downstream.pipe(upstream);
    downstream.on('error', () => upstream.destroy());
    downstream.on('close', () => {
      clearInterval(timer);
      upstream.destroy();
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  closers.push(() => proxy.close());
  return (proxy.address() as net.AddressInfo).port;
}

const rows = (screen: string) => screen.split('\n');
/** The key bar as words: a wide terminal pads its key caps. */
const keyBar = (screen: string) => (rows(screen).at(-2) ?? '').replace(/ +/g, ' ');

/**
 * No stray wrap: inside the image table every row is the header, an image's row (its name right after the
 * border), or empty; no row starts with a piece of another row (a percentage, a state word).
 */
function assertTableRowsWhole(screen: string, names: string[], what: string): void {
  const lines = rows(screen);
  const top = lines.findIndex((line) => line.includes('─ images ('));
  assert.ok(top >= 0, `${what}: the table is on the screen`);
  for (const line of lines.slice(top + 2)) {
    if (line.startsWith('└')) break;
    const cell = line.slice(1, line.indexOf('│', 1));
    const fine = cell.trim() === '' || names.some((name) => cell.startsWith(` ${name}`) || cell.startsWith(`›${name}`));
    assert.ok(fine, `${what}: a table row that is no image's row: "${line}"`);
  }
  for (const line of lines) assert.ok([...line].length <= 100, `${what}: a line wider than the terminal`);
}

const SAMPLES = ['checkerboard-dice.png', 'mandelbrot.png', 'sunset.png', 'terrain-large.png'];

test.after(() => dashboards.stop());

test('a download through a slow link: progress moves for a 9.6 KiB image, rows stay whole at 80x24 and 100x30', async () => {
  const started = await server({ codes: [950] });
  const port = await slowLink(started.port, 256, 25);
  const { pane } = await startDashboard('slow', port);
  let screen = await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('20 of 20 left'));
  // At 80x24 names that fit are whole (the modified column gives way first).
  for (const name of SAMPLES) assert.match(tableRow(screen, name), name, `${name} is whole at 80x24`);
  await pane.press('j', 'j', 'Enter');
  // During the download: a percentage strictly between 0 and 100 on sunset.png's own row, every row whole.
  screen = await pane.waitFor((text) => /[^\d]([1-9]\d?)%/.test(tableRow(text, 'sunset.png')), 15_000);
  assertTableRowsWhole(screen, SAMPLES, '80x24 during a download');
  screen = await pane.waitFor((text) => tableRow(text, 'sunset.png').includes('current'), 15_000);
  assertTableRowsWhole(screen, SAMPLES, '80x24 after a download');
  // The preview's details keep their last line (where the copy was saved).
  assert.match(screen, /│saved …?.*sunset\.png *│/, 'the saved path is shown at 80x24');

  await pane.resize(100, 30);
  await pane.waitFor((text) => rows(text)[2]?.length === 100);
  await pane.press('g', 'Enter');
  screen = await pane.waitFor((text) => /[^\d]([1-9]\d?)%/.test(tableRow(text, 'checkerboard-dice.png')), 15_000);
  assertTableRowsWhole(screen, SAMPLES, '100x30 during a download');
  screen = await pane.waitFor((text) => tableRow(text, 'checkerboard-dice.png').includes('current'), 15_000);
  assertTableRowsWhole(screen, SAMPLES, '100x30 after a download');
  // A log entry longer than the panel goes on under its text, indented, and the newest entry stays in view.
  const log = rows(screen).filter((line) => line.startsWith('│') && /^│(\d\d:\d\d:\d\d| {9})/.test(line));
  assert.ok(
    log.some((line) => line.startsWith('│         ')),
    'a long entry continues indented under its text',
  );
  assert.match(screen, /saved checkerboard-dice\.png/);
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test('Esc is back, never quit; typed help stays open; / searches; s sorts; q quits with status 0 and the title back', async () => {
  const started = await server({ codes: [950] });
  const { pane } = await startDashboard('keys', started.port);
  await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));
  assert.match(await pane.title(), `imgcache 127.0.0.1:${started.port}`);
  // Esc twice to leave the command line (and once more for luck) leaves the program running.
  await pane.press(':');
  await pane.waitFor('Enter run');
  await pane.press('Escape', 'Escape', 'Escape');
  let screen = await pane.waitFor(': type a command');
  await pane.press('j');
  screen = await pane.waitFor((text) => tableRow(text, 'mandelbrot.png').includes('›'));
  assert.match(screen, '● connected');

  // `help` typed on the command line opens the help, which stays until a key is pressed.
  await pane.press(':');
  await pane.type('help');
  await pane.press('Enter');
  screen = await pane.waitFor('any key closes this help');
  await pane.press('Escape');
  await pane.waitFor((text) => !text.includes('any key closes this help'));

  // `/` filters the table as the name is typed; Enter keeps it; Esc clears it.
  await pane.press('/');
  await pane.type('sun');
  screen = await pane.waitFor('images (1 of 4, "sun")');
  assert.not.match(screen, 'mandelbrot.png  ');
  assert.match(tableRow(screen, 'sunset.png'), '›sunset.png');
  await pane.press('Enter');
  await pane.waitFor('Esc clear search');
  await pane.press('Escape');
  screen = await pane.waitFor('images (4)');

  // s sorts by size (largest first), then by date, then by name again.
  await pane.press('s');
  screen = await pane.waitFor('images (4) by size');
  const order = rows(screen)
    .map((line) => SAMPLES.find((name) => tableRow(line, name) !== ''))
    .filter(Boolean);
  assert.equal(order, ['terrain-large.png', 'mandelbrot.png', 'sunset.png', 'checkerboard-dice.png']);
  await pane.press('s', 's');
  await pane.waitFor('images (4) ─');

  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
  assert.is(await pane.title(), SHELL_TITLE, 'the terminal title is given back');
});

test('the mouse: a click selects a row, the wheel moves, a click on the key bar presses its key', async () => {
  const started = await server({ codes: [950] });
  const { pane } = await startDashboard('mouse', started.port);
  let screen = await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));
  const line = rows(screen).findIndex((text) => text.includes('sunset.png'));
  await pane.click(5, line);
  screen = await pane.waitFor((text) => tableRow(text, 'sunset.png').includes('›sunset.png'));
  assert.match(screen, '─ sunset.png ─', 'the preview shows the clicked image');
  await pane.wheel(5, line, 'down');
  await pane.waitFor((text) => tableRow(text, 'terrain-large.png').includes('›terrain-large.png'));
  await pane.wheel(5, line, 'up');
  await pane.waitFor((text) => tableRow(text, 'sunset.png').includes('›sunset.png'));
  // The key bar's '?' item opens the help.
  const bar = rows(screen).findIndex((text) => text.includes('? help'));
  const column = (rows(screen)[bar] ?? '').indexOf('? help');
  await pane.click(column, bar);
  await pane.waitFor('any key closes this help');
  await pane.press('q');
  await pane.waitFor((text) => !text.includes('any key closes this help'));
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test('[P-21] the last get is asked about; once the session is over the bar offers only what works, r reconnects; status 6 after', async () => {
  const started = await server({ codes: [108, 108] });
  const { pane, cacheDir } = await startDashboard('over', started.port, { width: 100, height: 30 });
  await pane.waitFor((text) => text.includes('3 of 3 left') && text.includes('terrain-large.png'));
  await pane.press('u');
  let screen = await pane.waitFor('usage is a platinum right');
  assert.not.match(screen, /\[P-\d+\]/, 'no rule numbers in what a person reads');
  await pane.press(':');
  await pane.type('get checkerboard-dice.png sunset.png mandelbrot.png');
  await pane.press('Enter');
  await pane.waitFor((text) => text.includes('0 of 3 left') && tableRow(text, 'mandelbrot.png').includes('current'));
  // The log scrolls back (l, then k) to the warning the saves pushed out of view.
  await pane.press('l');
  await pane.waitFor('─ log ↑↓ ─');
  // Back one entry at a time (the order of the entries depends on how the answers interleave).
  for (let back = 1; back <= 12 && !screen.includes('list still works'); back++) {
    await pane.press('k');
    screen = await pane.waitFor(`(${back} newer below`);
  }
  assert.match(screen, 'list still works');
  assert.not.match(screen, 'usage still works', 'a bronze user is not told that usage works');
  await pane.press('G', 'Escape');
  await pane.waitFor((text) => !text.includes('newer below') && keyBar(text).includes('Enter get'));

  // The get that would end the session is asked about; n keeps the session.
  await pane.press('G', 'Enter');
  await pane.waitFor('y/n: get terrain-large.png?');
  await pane.press('n');
  screen = await pane.waitFor('not getting terrain-large.png');
  assert.match(screen, '● connected');
  await pane.press('Enter');
  await pane.waitFor('y/n: get terrain-large.png?');
  await pane.press('y');
  screen = await pane.waitFor('Quota exhausted');
  const bar = keyBar(screen);
  for (const gone of ['Enter get', ': command', 'u usage', 'refresh'])
    assert.not.match(bar, gone, `no "${gone}" once over`);
  assert.match(bar, 'r reconnect');
  assert.match(bar, 'q quit');
  assert.not.match(screen, 'Enter gets it', 'the preview offers no get');
  await pane.resize(80, 24);
  // At 80 columns the header says it shorter ("you are", then "closed:" go) before it cuts anything: tier and state.
  await pane.waitFor((text) => /client-1 {2}code 108 {2}bronze {2}✖ (closed: )?quota exhausted *$/m.test(text));
  await pane.resize(100, 30);
  await pane.waitFor((text) => rows(text)[2]?.length === 100);

  // r: a new session on the same screen, with its own quota.
  await pane.press('r');
  screen = await pane.waitFor((text) => text.includes('you are client-2') && text.includes('3 of 3 left'));
  assert.match(screen, '● connected');
  assert.match(keyBar(screen), 'Enter get', screen);
  assert.not.match(screen, 'Quota exhausted');
  await pane.press('Enter');
  await pane.waitFor((text) => text.includes('2 of 3 left') && tableRow(text, 'terrain-large.png').includes('current'));
  assert.ok(
    readFileSync(path.join(cacheDir, 'terrain-large.png')).equals(
      readFileSync(path.join(SAMPLE_IMAGES, 'terrain-large.png')),
    ),
  );
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0, 'quit while the new session is open: 0');
});

test('the server ends the session: quitting then exits 6; SIGTERM exits 143; the title is given back', async () => {
  const first = await server({ codes: [750] });
  const { pane } = await startDashboard('ended', first.port);
  await pane.waitFor((text) => text.includes('gold') && text.includes('terrain-large.png'));
  await dashboards.stopServer(first);
  await pane.waitFor('The server is shutting down');
  await pane.press('q');
  assert.is(await pane.waitForExit(), 6);

  const second = await server({ codes: [750] });
  const { pane: other } = await startDashboard('sigterm', second.port);
  await other.waitFor((text) => text.includes('gold') && text.includes('terrain-large.png'));
  process.kill(await other.programPid(), 'SIGTERM');
  assert.is(await other.waitForExit(), 143);
  assert.is(await other.title(), SHELL_TITLE);
});

test('[P-70] the catalog is followed without r, on a NOTICE from the server', async () => {
  const images = copySampleImages();
  closers.push(() => rmSync(images.folder, { recursive: true, force: true }));
  const started = await server({ codes: [950, 108], cacheDir: images.images });
  const { pane } = await startDashboard('live', started.port);
  await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));
  let screen: string;

  // A new image on the server shows up by itself; a long name is cut in the preview's title, not spilled.
  const long = 'a-rather-long-image-name-for-the-preview-title.png';
  copyFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'), path.join(images.images, long));
  screen = await pane.waitFor((text) => text.includes('images (5)') && text.includes('the catalog changed: new'));
  // Wide characters take two cells: the row of a name written in them is as wide as every other row.
  copyFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'), path.join(images.images, '夕焼け-sunset.png'));
  screen = await pane.waitFor((text) => text.includes('images (6)') && text.includes('夕焼け-sunset.png'));
  for (const line of rows(screen).slice(2, 18)) assert.is(cellWidth(line), 80, `"${line}" is 80 cells`);
  await pane.press('g');
  screen = await pane.waitFor((text) => tableRow(text, long.slice(0, 20)).includes('›'));
  const title = rows(screen).find((line) => line.includes('┐┌─ ')) ?? '';
  assert.match(title, /┌─ a-rather-long-image-n[^ ]*… ─+┐$/, 'the title ends in … on the border');
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test('the usage view: after G, k moves at once; not-modified is whole', async () => {
  const started = await server({ codes: [950, 950] });
  // Another client's history: one download and twenty revalidations, more rows than the view holds.
  const other = await ImgcacheClient.connect({ port: started.port });
  const pieces: Buffer[] = [];
  const first = await other.getImage('sunset.png', { write: (piece) => void pieces.push(piece) });
  assert.is(first.status, 'ok');
  const have = first.status === 'ok' ? first.end.sha256 : '';
  for (let i = 0; i < 20; i++) {
    const again = await other.getImage('sunset.png', { write: () => undefined }, { have });
    assert.is(again.status, 'not-modified');
  }
  await other.exit();
  const { pane } = await startDashboard('usage', started.port, { width: 100, height: 30 });
  await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));
  await pane.press('u');
  await pane.waitFor(/rows 1-\d+ of 22/);
  await pane.press('G');
  let screen = await pane.waitFor(/rows \d+-22 of 22/);
  const cursor = (text: string) => rows(text).findIndex((line) => line.includes('│›client-'));
  const atBottom = cursor(screen);
  assert.ok(
    rows(screen).some((line) => /sunset\.png .* not-modified *│$/.test(line)),
    'not-modified is whole',
  );
  await pane.press('k');
  screen = await pane.waitFor((text) => cursor(text) === atBottom - 1);
  assert.match(screen, /rows \d+-22 of 22/, 'the view did not move: the cursor did');
  // As in htop: the cursor climbs to the top of the view before the view scrolls.
  await pane.press(...Array.from({ length: 13 }, () => 'k'));
  screen = await pane.waitFor((text) => cursor(text) === atBottom - 14);
  assert.match(screen, /rows \d+-22 of 22/);
  await pane.press('k');
  await pane.waitFor(/rows \d+-21 of 22/);
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test('the preview: truecolor when the terminal says so, 256 colours otherwise', async () => {
  const started = await server({ codes: [950, 950] });
  for (const [name, env, sgr] of [
    ['true', { COLORTERM: 'truecolor' }, /\[[0-9;]*38;2;\d+;\d+;\d+m/],
    ['palette', {}, /\[[0-9;]*38;5;\d+[;m]/],
  ] as const) {
    const { pane } = await startDashboard(`colour-${name}`, started.port, { width: 100, height: 30 }, env);
    await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));
    await pane.press('j', 'j', 'Enter');
    await pane.waitFor('320x200 · current');
    const coloured = await pane.waitFor(
      (text) => sgr.test(text),
      10_000,
      () => terminal.tmux('capture-pane', '-p', '-e', '-t', pane.name),
    );
    if (name === 'palette') assert.not.match(coloured, /38;2;/, 'no truecolor unless the terminal says so');
    await pane.press('q');
    assert.is(await pane.waitForExit(), 0);
  }
});

test.run();
