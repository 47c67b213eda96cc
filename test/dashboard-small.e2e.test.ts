/**
 * The dashboard in a terminal smaller than its layout can show: a plain centred message saying the size it needs,
 * who you are and the state of the session, q still quitting; the normal screen back once the terminal grows. The
 * real `imgcache` command in a real terminal (tmux) against a real server on a free port.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MIN_COLUMNS, MIN_ROWS } from '../client/dashboard/layout.ts';
import { DashboardTerminal, tableRow } from './helpers/dashboard-terminal.ts';

const dashboards = new DashboardTerminal('small');

test.after(() => dashboards.stop());

const NEEDS = `${MIN_COLUMNS}x${MIN_ROWS}`;

/** The screen's text with its lines' padding gone and its lines joined: what a person reads, however it wrapped. */
function read(screen: string): string {
  return screen
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join(' ');
}

test('below the size the layout needs, a centred message; the screen comes back when the terminal grows', async () => {
  const server = await dashboards.server({ codes: [950] });
  const { pane } = await dashboards.startDashboard('shrink', server.port, { width: 80, height: 24 });
  await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('● connected'));

  await pane.resize(40, 12);
  let screen = await pane.waitFor((text) => read(text).includes(`(this one is 40x12)`));
  assert.match(read(screen), `imgcache needs a terminal of at least ${NEEDS} (this one is 40x12)`);
  assert.match(read(screen), 'client-1 · platinum · ● connected', 'who you are and the state, on one line');
  assert.match(screen, /^ +client-1 · platinum · ● connected$/m, 'centred on its own line');
  assert.not.match(screen, 'terrain-large.png', 'no panel cut to pieces');
  assert.not.match(screen, '┌', 'no box drawn');

  await pane.resize(80, 24);
  screen = await pane.waitFor((text) => tableRow(text, 'terrain-large.png') !== '' && text.includes('● connected'));
  assert.not.match(screen, 'needs a terminal');
  assert.match(screen, /you are client-1 {2}code 950 {2}platinum/);

  await pane.resize(20, 8);
  screen = await pane.waitFor((text) => read(text).includes('(this one is 20x8)'));
  assert.match(read(screen), 'q quits');
  await pane.press('q');
  await pane.resize(80, 24); // the shell's closing line, wrapped at 20 columns, joined again to be read
  assert.is(await pane.waitForExit(), 0, 'q quits cleanly while the message is shown');
});

test('started in a terminal too small, the dashboard says so and still connects', async () => {
  const server = await dashboards.server({ codes: [108] });
  const { pane } = await dashboards.startDashboard('small-start', server.port, { width: 40, height: 12 });
  const screen = await pane.waitFor((text) => read(text).includes('client-1 · bronze · ● connected'));
  assert.match(read(screen), `at least ${NEEDS} (this one is 40x12)`);
  await pane.resize(80, 24);
  await pane.waitFor((text) => tableRow(text, 'sunset.png') !== '' && text.includes('bronze'));
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test.run();
