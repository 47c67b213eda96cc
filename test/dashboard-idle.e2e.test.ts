/**
 * The dashboard and idleness, end to end: it follows the catalog on the server's NOTICE [P-70] without a key press and
 * without asking now and then, so an open dashboard left alone idles out like any session [P-27]: it says so calmly,
 * and the next action that needs the server opens a new session; and its slot is reclaimed for a client that is
 * turned away [P-44]. The real `imgcache` command runs in a real terminal (tmux) against a real server on a free port.
 */
import { copyFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { RejectedError } from '../src/protocol/index.ts';
import { DashboardTerminal, tableRow } from './helpers/dashboard-terminal.ts';
import { copySampleImages } from './helpers/live-images.ts';
import { SAMPLE_IMAGES } from './helpers/test-server.ts';
import type { TmuxPane } from './helpers/tmux.ts';
import { within } from './helpers/within.ts';

const dashboards = new DashboardTerminal('idle');
const { closers } = dashboards;
const server = (options: Parameters<typeof dashboards.server>[0]) => dashboards.server(options);

async function startDashboard(name: string, port: number): Promise<TmuxPane> {
  return (await dashboards.startDashboard(name, port, { width: 100, height: 30 })).pane;
}

const rows = (screen: string) => screen.split('\n');
/** The key bar as words: a wide terminal pads its key caps. */
const keyBar = (screen: string) => (rows(screen).at(-2) ?? '').replace(/ +/g, ' ');
/** The screen as one line: the banner wraps where the terminal's width says. */
const flat = (screen: string) => screen.replace(/\s*\n[│ ]*/g, ' ');

test.after(() => dashboards.stop());

test('[P-70] [P-27] a new image shows up with no key pressed; idle, it is closed calmly, and Enter reconnects and gets', async () => {
  const images = copySampleImages();
  closers.push(() => rmSync(images.folder, { recursive: true, force: true }));
  const started = await server({
    codes: [950, 951],
    cacheDir: images.images,
    idleTimeoutMs: 2500,
    catalogRescanMs: 100,
  });
  const pane = await startDashboard('follow', started.port);
  await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));

  // [P-70] no key pressed: the NOTICE makes the dashboard list again
  copyFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'), path.join(images.images, 'zz-arrived.png'));
  let screen = await pane.waitFor((text) => text.includes('images (5)') && tableRow(text, 'zz-arrived.png') !== '');
  assert.match(screen, 'the catalog changed: new zz-arrived.png');

  // [P-27] nobody touches it: the server closes it for idleness, and the dashboard says so calmly, still running
  const closed = await within(
    started.waitForEvent((event) => event.type === 'session-closed'),
    'the dashboard session closed for idleness',
  );
  assert.is((closed.data as { reason: string }).reason, 'idle-timeout');
  // the status line and the key bar may reach the terminal in separate writes: wait for both
  screen = await pane.waitFor((text) => text.includes('closed while idle') && keyBar(text).includes('r reconnect'));
  assert.match(flat(screen), /Closed after \d+ seconds? without a request; press r or any command to reconnect\./);
  assert.not.match(screen, '✖', 'no alarm: nothing went wrong');
  assert.match(keyBar(screen), 'Enter get');
  assert.match(keyBar(screen), 'r reconnect');
  assert.is(tableRow(screen, 'zz-arrived.png') !== '', true, 'the table stays');

  // Enter on the selected image: a new session, then the get, with no other key
  await pane.press('Enter');
  screen = await pane.waitFor(
    (text) => text.includes('● connected') && tableRow(text, 'checkerboard-dice.png').includes('current'),
    15_000,
  );
  assert.match(screen, 'saved checkerboard-dice.png');
  const sessions = started.events.filter((event) => event.type === 'session-admitted');
  assert.is(sessions.length, 2, 'a new session');

  // The table works again: move and get another image in the new session
  await pane.press('j', 'Enter');
  screen = await pane.waitFor((text) => tableRow(text, 'mandelbrot.png').includes('current'), 15_000);
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test('[P-27] after an idle close, r and a typed command reconnect too; q exits 0', async () => {
  const started = await server({ codes: [950, 951, 952], idleTimeoutMs: 1500 });
  const pane = await startDashboard('keys', started.port);
  await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));
  await pane.waitFor((text) => text.includes('closed while idle'));
  await pane.press('r');
  await pane.waitFor((text) => text.includes('● connected') && text.includes('client-2'));
  await pane.waitFor((text) => text.includes('closed while idle'));
  await pane.type(':');
  await pane.type('list');
  await pane.press('Enter');
  await pane.waitFor((text) => text.includes('● connected') && text.includes('client-3'));
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test('[P-44] an idle dashboard gives its slot to a client turned away, and gets back in once there is room', async () => {
  const started = await server({ codes: [950, 951, 952], capacity: 1, reclaimIdleAfterMs: 300 });
  const pane = await startDashboard('reclaim', started.port);
  await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));

  // A client turned away while the dashboard has been idle for less than the threshold retries after the hint; once
  // told 0, at once (bounded in count and time).
  let waiting: ImgcacheClient | null = null;
  for (let attempt = 0; attempt < 100 && waiting === null; attempt++) {
    try {
      waiting = await ImgcacheClient.connect({ port: started.port });
    } catch (error) {
      if (!(error instanceof RejectedError)) throw error;
      assert.is(error.reject.reason, 'server-full');
      if (error.reject.retryAfterMs !== 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  if (!waiting) throw new Error('the waiting client never got in');
  const reclaimed = await within(
    started.waitForEvent(
      (event) => event.type === 'session-closed' && (event.data as { reason: string }).reason === 'idle-reclaimed',
    ),
    'the dashboard reclaimed',
  );
  assert.is(reclaimed.session, 1, "the dashboard's session");
  let screen = await pane.waitFor((text) => text.includes('closed while idle'));
  assert.match(flat(screen), 'without a request; press r or any command to reconnect');

  // While the other client holds the only slot, a reconnect is turned away and says so; once it leaves, r gets in.
  await pane.press('r');
  screen = await pane.waitFor((text) => flat(text).includes('No new session'));
  await waiting.exit();
  waiting.close();
  await pane.press('r');
  await pane.waitFor((text) => text.includes('● connected') && text.includes('terrain-large.png'), 15_000);
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test.run();
