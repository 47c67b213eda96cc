/**
 * The dashboard end to end: the real `imgcache` command in a real terminal (tmux), against a real server on a free
 * port. The tests type and press keys the way a person does and check what a person would read on the screen, and
 * what lands in the cache folder.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { tableRow } from './helpers/dashboard-terminal.ts';
import { CLIENT_BIN } from './helpers/processes.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer, type TestServer } from './helpers/test-server.ts';
import { TmuxServer } from './helpers/tmux.ts';

const folder = makeTemporaryFolder('imgcache-dashboard-e2e-');
const terminal = new TmuxServer(folder);
const servers: TestServer[] = [];
const heldClients: ImgcacheClient[] = [];

/** Starts the dashboard the way a person does: `imgcache --port P --cache-dir D`, no command. */
async function startDashboard(name: string, port: number, size = { width: 100, height: 30 }) {
  const cacheDir = path.join(folder, `${name}-cache`);
  const workDir = makeTemporaryFolder(`imgcache-dashboard-${name}-`);
  const argv = [process.execPath, CLIENT_BIN, '--port', String(port), '--cache-dir', cacheDir];
  const pane = await terminal.start(name, argv, { ...size, cwd: workDir });
  return { pane, cacheDir, workDir };
}

function sameBytes(file: string, sample: string): boolean {
  return readFileSync(file).equals(readFileSync(path.join(SAMPLE_IMAGES, sample)));
}

test.after(async () => {
  await terminal.kill();
  for (const client of heldClients) client.close();
  await Promise.all(servers.map((server) => server.stop()));
  rmSync(folder, { recursive: true, force: true });
});

test('a platinum client: identity, image list, downloads, quota gauge, usage view, 80x24, quit', async () => {
  const server = await startTestServer({ codes: [950] });
  servers.push(server);
  const { pane, cacheDir, workDir } = await startDashboard('platinum', server.port);
  try {
    // [P-12] the header names us; [P-18] the table lists every image, none downloaded yet.
    let screen = await pane.waitFor((text) => text.includes('terrain-large.png') && text.includes('20 of 20 left'));
    assert.match(screen, `127.0.0.1:${server.port}`);
    assert.match(screen, '● connected');
    assert.match(screen, /you are client-1 {2}code 950 {2}platinum/);
    for (const image of ['checkerboard-dice.png', 'mandelbrot.png', 'sunset.png', 'terrain-large.png']) {
      assert.match(tableRow(screen, image), 'not saved', image);
    }

    // Enter downloads the selected image: it lands byte-identical, the row says current, the gauge goes down.
    await pane.press('j', 'Down', 'Enter');
    screen = await pane.waitFor(
      (text) =>
        text.includes('19 of 20 left') && tableRow(text, 'sunset.png').includes('current') && text.includes('320x200'),
    );
    assert.ok(sameBytes(path.join(cacheDir, 'sunset.png'), 'sunset.png'), 'sunset.png is byte-identical');
    assert.match(screen, '│›sunset.png', 'the selection marker is on the row that was downloaded');
    assert.match(screen, '320x200 · current', 'the preview shows the saved copy and its size');
    assert.match(screen, /saved .*sunset\.png/);
    assert.ok(screen.includes('▀'), 'the picture is drawn in half blocks');

    // The command line: Tab completes the name, Enter runs `get`; the gauge goes down again.
    await pane.press(':');
    await pane.type('get mand');
    await pane.press('Tab');
    await pane.waitFor(': get mandelbrot.png');
    await pane.press('Enter');
    screen = await pane.waitFor('18 of 20 left');
    await pane.waitFor((text) => tableRow(text, 'mandelbrot.png').includes('current'));
    assert.ok(sameBytes(path.join(cacheDir, 'mandelbrot.png'), 'mandelbrot.png'), 'mandelbrot.png is byte-identical');

    // [P-22] [P-32] the usage view: a table of client, tier, image and time; filter; save the JSON.
    await pane.press('u');
    screen = await pane.waitFor('usage: every client');
    await pane.waitFor(/client-1 +platinum +sunset\.png +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d served/);
    screen = await pane.waitFor(/client-1 +platinum +mandelbrot\.png/);
    assert.match(screen, /client +tier +image +time/);
    await pane.press('f');
    await pane.waitFor('usage: client client-1 only');
    // s saves what is shown (one client here), says so, and saves into the cache folder, never the working folder.
    await pane.press('s');
    screen = await pane.waitFor('usage of client client-1 only saved to');
    assert.equal(readdirSync(workDir), [], 'nothing is written to the working folder');
    const saved = readdirSync(path.join(cacheDir, 'usage')).filter((name) => name.startsWith('imgcache-usage-'));
    assert.is(saved.length, 1, 'one usage file in the cache folder');
    const usage = JSON.parse(readFileSync(path.join(cacheDir, 'usage', saved[0] as string), 'utf8'));
    assert.equal(
      usage.clients.map((client: { name: string }) => client.name),
      ['client-1'],
    );
    assert.equal(
      usage.clients[0].requests.map((request: { image: string }) => request.image),
      ['sunset.png', 'mandelbrot.png'],
    );
    await pane.press('Escape');
    await pane.waitFor('images (4)');

    // 80x24 still shows every panel.
    await pane.resize(80, 24);
    // The compact key bar (one space between a key and its meaning) is drawn only for a narrow terminal.
    screen = await pane.waitFor((text) => text.includes('Enter get') && text.includes('images (4)'));
    for (const part of [
      'client-1',
      '18 of 20 left',
      'images (4)',
      'sunset.png',
      '─ log ─',
      ': type a command',
      'quit',
    ]) {
      assert.match(screen, part, `80x24 shows ${part}`);
    }
    assert.ok(
      screen.split('\n').every((line) => line.length <= 80),
      'nothing is wider than the terminal',
    );

    await pane.press('q');
    assert.is(await pane.waitForExit(), 0);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
});

test('[P-21] a bronze client: usage is a platinum right; the exhausted quota is said in words and the screen stays', async () => {
  const server = await startTestServer({ codes: [108] });
  servers.push(server);
  const { pane, cacheDir, workDir } = await startDashboard('bronze', server.port);
  try {
    await pane.waitFor((text) => text.includes('3 of 3 left') && text.includes('terrain-large.png'));
    await pane.press('u');
    await pane.waitFor('usage is a platinum right');

    await pane.press(':');
    await pane.type('get checkerboard-dice.png sunset.png mandelbrot.png');
    await pane.press('Enter');
    await pane.waitFor((text) => text.includes('0 of 3 left') && text.includes('Quota used up'));
    await pane.waitFor((text) => tableRow(text, 'mandelbrot.png').includes('current'));

    // One more get: the server refuses it and closes the session; the dashboard says so and stays.
    await pane.press('G', 'Enter');
    await pane.waitFor('y/n: get terrain-large.png? 0 requests left: the server ends the session.');
    await pane.press('y');
    const screen = await pane.waitFor('Quota exhausted');
    assert.match(screen, 'closed: quota exhausted');
    assert.match(screen, 'Press r to reconnect, q to quit');
    assert.match(screen, 'refused get terrain-large.png');
    assert.match(tableRow(screen, 'sunset.png'), 'current', 'the table is still there');
    assert.not.ok(existsSync(path.join(cacheDir, 'terrain-large.png')));
    await pane.press('q');
    assert.is(await pane.waitForExit(), 6, 'the server ended the session: status 6');
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
});

test('[P-13] a fourth client is turned away: reason, occupancy and retry hint, exit status 3, no stack trace', async () => {
  const server = await startTestServer({ codes: [108, 450, 750], capacity: 3 });
  servers.push(server);
  const clients = await Promise.all([1, 2, 3].map(() => ImgcacheClient.connect({ port: server.port })));
  heldClients.push(...clients);
  const { pane, workDir } = await startDashboard('rejected', server.port);
  try {
    const status = await pane.waitForExit();
    const screen = await pane.captureWithHistory();
    assert.is(status, 3);
    assert.match(screen, `the server at 127.0.0.1:${server.port} rejected the connection (server-full)`);
    assert.match(screen, 'occupancy: 3 of 3 sessions open');
    assert.match(screen, /retry: try again in \d+\.\d s/);
    assert.not.match(screen, /^\s+at /m, 'no stack trace');
  } finally {
    for (const client of clients) await client.exit();
    rmSync(workDir, { recursive: true, force: true });
  }
});

test('[P-28] the server shuts down: the dashboard says so in words and stays readable until q', async () => {
  const server = await startTestServer({ codes: [750] });
  servers.push(server);
  const { pane, workDir } = await startDashboard('shutdown', server.port);
  try {
    await pane.waitFor((text) => text.includes('gold') && text.includes('terrain-large.png'));
    servers.splice(servers.indexOf(server), 1);
    await server.stop();
    const screen = await pane.waitFor('The server is shutting down');
    assert.match(screen, 'closed: the server shut down');
    assert.match(screen, 'Press r to reconnect, q to quit');
    assert.match(screen, 'terrain-large.png', 'the table is still there');
    await pane.press('j');
    await pane.press('q');
    assert.is(await pane.waitForExit(), 6, 'the server ended the session: status 6');
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
});

test.run();
