/**
 * The dashboard's local state follows the cache folder: a file deleted behind its back is not called current, by r
 * nor by the y/n question of the last get. The real `imgcache` command in a real terminal (tmux) against a real
 * server on a free port.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DashboardTerminal, tableRow } from './helpers/dashboard-terminal.ts';

const dashboards = new DashboardTerminal('local');

test.after(() => dashboards.stop());

test('[P-21] a file deleted from the cache folder: r says not saved, and the last get is still asked about', async () => {
  const server = await dashboards.server({ codes: [108] });
  const { pane, cacheDir } = await dashboards.startDashboard('deleted', server.port, { width: 100, height: 30 });
  await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));
  // checkerboard-dice.png, mandelbrot.png, sunset.png: the three requests of a bronze session.
  await pane.press(':');
  await pane.type('get checkerboard-dice.png mandelbrot.png sunset.png');
  await pane.press('Enter');
  await pane.waitFor(
    (text) => text.includes('0 of 3 left') && tableRow(text, 'sunset.png').includes('current'),
    15_000,
  );

  rmSync(path.join(cacheDir, 'checkerboard-dice.png'));
  await pane.press('r');
  let screen = await pane.waitFor((text) => tableRow(text, 'checkerboard-dice.png').includes('not saved'));
  assert.match(tableRow(screen, 'mandelbrot.png'), 'current', 'the files still there stay current');

  // Deleted without r: Enter at 0 left checks the file, and asks before the get that would end the session.
  rmSync(path.join(cacheDir, 'sunset.png'));
  await pane.press('j', 'j', 'Enter');
  screen = await pane.waitFor('y/n: get sunset.png?');
  assert.match(screen, '● connected', 'nothing was sent');
  assert.match(tableRow(screen, 'sunset.png'), 'not saved');
  await pane.press('n');
  await pane.waitFor('not getting sunset.png');
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test.run();
