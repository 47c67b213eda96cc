/**
 * The two commands as a person runs them: `imgcache-server` (its options, Ctrl-C, its history command) and the
 * scriptable `imgcache` client (its output and exit status).
 */
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { openDatabase } from '../db/open-database.ts';
import { readEvents } from '../db/read-events.ts';
import { encodeJsonFrame, type Frame, FrameDecoder, MessageType } from '../src/protocol/index.ts';
import { CLIENT_BIN, runCommand, SERVER_BIN, spawnServer } from './helpers/processes.ts';
import { eventually, makeTemporaryFolder, SAMPLE_IMAGES } from './helpers/test-server.ts';

test('imgcache-server --help lists every option with its default and environment variable', async () => {
  const result = await runCommand(SERVER_BIN, ['--help']);
  assert.is(result.status, 0);
  for (const word of ['--port', 'IMGCACHE_PORT', '7878', '--capacity', '--database', '--tiers', '--idle-timeout-ms']) {
    assert.ok(result.stdout.includes(word), `help mentions ${word}`);
  }
});

test('imgcache list, get and usage against a running server; Ctrl-C stops it cleanly and history prints it', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const server = await spawnServer(['--database', database, '--codes', '108,950,450']);
  try {
    const port = String(server.port);
    const list = await runCommand(CLIENT_BIN, ['list', '--port', port]);
    assert.is(list.status, 0, list.stdout + list.stderr);
    assert.match(list.stdout, /you are client-\d+, code 108, tier bronze; 3 of 3 image requests left/);
    assert.match(list.stdout, /terrain-large\.png/);

    const downloads = path.join(folder, 'downloads');
    const get = await runCommand(CLIENT_BIN, ['get', 'sunset.png', '--port', port, '--cache-dir', downloads]);
    assert.is(get.status, 0, get.stdout + get.stderr);
    assert.ok(
      readFileSync(path.join(downloads, 'sunset.png')).equals(readFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'))),
    );

    const forbidden = await runCommand(CLIENT_BIN, ['usage', '--port', port]);
    assert.is(forbidden.status, 4, 'a refused request exits with 4');
    assert.match(forbidden.stderr, /usage-forbidden/);
    assert.is(forbidden.stdout, '', 'a refusal is not a result: stdout stays empty');

    // A client still connected when the operator presses Ctrl-C is told, and its close is recorded.
    const connected = await ImgcacheClient.connect({ port: server.port });
    const told = new Promise((resolve) => connected.once('notice', resolve));
    server.child.kill('SIGINT');
    assert.equal(await told, {
      kind: 'shutting-down',
      message: 'the server is shutting down',
      closing: true,
    });
    assert.is(await server.exited, 0, 'the server exits 0 after SIGINT');

    const history = openDatabase(database, { readonly: true });
    const events = readEvents(history);
    history.close();
    assert.is(events.at(-1)?.type, 'server-stopped');
    const closes = events.filter((event) => event.type === 'session-closed').map((event) => event.data);
    assert.equal(closes.at(-1), { reason: 'server-shutdown' });

    const printed = await runCommand(SERVER_BIN, ['history', '--database', database]);
    assert.is(printed.status, 0, printed.stderr);
    const usage = JSON.parse(printed.stdout) as {
      clients: Array<{ code: number; requests: Array<{ image: string }> }>;
    };
    assert.equal(
      usage.clients.map((client) => client.code),
      [108, 950, 450, 108],
    );
    assert.equal(
      usage.clients[1]?.requests.map((request) => request.image),
      ['sunset.png'],
    );
  } finally {
    server.child.kill('SIGKILL');
    rmSync(folder, { recursive: true, force: true });
  }
});

test('[P-28] [P-30] at shutdown the closing NOTICE is followed by a graceful close, not a reset', async () => {
  const folder = makeTemporaryFolder();
  const server = await spawnServer(['--database', path.join(folder, 'history.sqlite'), '--codes', '950']);
  try {
    // A peer that keeps its side open after the server's FIN, as a client still sending a RECEIVED may.
    const socket = net.connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
    const decoder = new FrameDecoder({ maxBodyBytes: 1 << 20 });
    const frames: Frame[] = [];
    let resetBy: string | null = null;
    socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      resetBy = error.code ?? 'error';
    });
    const ended = once(socket, 'end');
    await once(socket, 'connect');
    socket.write(encodeJsonFrame(MessageType.HELLO, { versions: [1] }));
    await eventually(() => frames.length === 1, 'the WELCOME');
    server.child.kill('SIGTERM');
    await ended;
    assert.equal(
      frames.map((frame) => frame.type),
      [MessageType.WELCOME, MessageType.NOTICE],
    );
    assert.is(JSON.parse(frames[1]?.body.toString() ?? '{}').kind, 'shutting-down');
    // What a client still sends after the last frame (a RECEIVED, a request it had pipelined) is read and discarded
    // while the server lingers ([P-30]); a server already gone answers it with a reset.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const id of [1, 2]) {
      socket.write(encodeJsonFrame(MessageType.REQUEST, { id, command: 'list' }));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.is(resetBy, null, 'no reset while the server lingers');
    socket.end();
    assert.is(await server.exited, 0, 'the server exits 0 once the client closed its side');
    socket.destroy();
  } finally {
    server.child.kill('SIGKILL');
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a client rejected by a full server prints the reason and exits 3 at once', async () => {
  const folder = makeTemporaryFolder();
  const server = await spawnServer(['--database', path.join(folder, 'h.sqlite'), '--capacity', '1']);
  try {
    const holder = await ImgcacheClient.connect({ port: server.port });
    const result = await runCommand(CLIENT_BIN, ['list', '--port', String(server.port)]);
    assert.is(result.status, 3);
    assert.match(result.stderr, /rejected by the server: .*\[server-full\]; occupancy 1\/1; retry after 1\.0 s/);
    holder.close();
  } finally {
    server.child.kill('SIGKILL');
    await server.exited;
    rmSync(folder, { recursive: true, force: true });
  }
});

test('bad options are refused with a clear message and status 2', async () => {
  const result = await runCommand(SERVER_BIN, ['--capacity', 'many']);
  assert.is(result.status, 2);
  assert.match(result.stderr, /--capacity \(IMGCACHE_CAPACITY\) must be an integer/);
  const client = await runCommand(CLIENT_BIN, ['fly']);
  assert.is(client.status, 2);
});

test.run();
