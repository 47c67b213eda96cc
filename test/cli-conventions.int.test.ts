/**
 * The `imgcache` command's manners, as a script sees them: the real CLI (a child process) against a real server on
 * 127.0.0.1 port 0. stdout and stderr are checked apart, the --json shapes of docs/CLI.md, and the exit statuses.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameDecoder, MessageType } from '../src/protocol/index.ts';
import { CLIENT_BIN, runCommand } from './helpers/processes.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer, type TestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const imgcache = (args: string[]) => runCommand(CLIENT_BIN, args);

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

function jsonLine(text: string): Record<string, unknown> {
  const [only, ...more] = lines(text);
  assert.is(more.length, 0, `one JSON line, not: ${text}`);
  return JSON.parse(only ?? 'null') as Record<string, unknown>;
}

async function withServer(codes: number[], body: (live: TestServer, downloads: string) => Promise<void>) {
  const live = await startTestServer({ codes });
  try {
    await body(live, path.join(live.folder, 'downloads'));
  } finally {
    await live.stop();
  }
}

/** A TCP listener on port 0 that answers each connection with `greeting` and closes. */
async function listenerSaying(greeting: Buffer): Promise<{ port: number; close(): void }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.end(greeting);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

test('a refusal goes to stderr and stdout stays empty: `usage > file` never writes it into the file', async () => {
  await withServer([108, 108], async (live) => {
    const port = String(live.port);
    const text = await imgcache(['usage', '--port', port]);
    assert.is(text.status, 4);
    assert.is(text.stdout, '');
    assert.equal(lines(text.stderr), ['imgcache: refused: the bronze tier may not read usage [usage-forbidden]']);

    const json = await imgcache(['usage', '--port', port, '--json']);
    assert.is(json.status, 4);
    assert.is(json.stdout, '');
    assert.equal(jsonLine(json.stderr), {
      error: { code: 'usage-forbidden', message: 'the bronze tier may not read usage', status: 4, fatal: false },
    });
  });
});

test('list --json: one document {session, quota, images[{name, bytes, modified, sha256, local}]}, nothing on stderr', async () => {
  await withServer([950], async (live, downloads) => {
    const result = await imgcache(['list', '--json', '--port', String(live.port), '--cache-dir', downloads]);
    assert.is(result.status, 0, result.stderr);
    assert.is(result.stderr, '');
    const document = jsonLine(result.stdout) as {
      session: { code: number; tier: string };
      quota: { limit: number; remaining: number };
      images: Array<Record<string, unknown>>;
    };
    assert.is(document.session.code, 950);
    assert.is(document.quota.remaining, 20);
    assert.equal(
      document.images.map((image) => image.name),
      ['checkerboard-dice.png', 'mandelbrot.png', 'sunset.png', 'terrain-large.png'],
    );
    for (const image of document.images) {
      assert.equal(Object.keys(image).sort(), ['bytes', 'local', 'modified', 'name', 'sha256']);
      assert.is(image.local, 'absent');
    }
  });
});

test('get a missing b: fetches a and b, names the missing one on stderr, exits 4 at the end (as cp does)', async () => {
  await withServer([950, 950], async (live, downloads) => {
    const where = ['--port', String(live.port), '--cache-dir', downloads];
    const result = await imgcache(['get', 'sunset.png', 'missing.png', 'checkerboard-dice.png', ...where]);
    assert.is(result.status, 4);
    const saved = lines(result.stdout);
    assert.is(saved.length, 2, result.stdout);
    assert.match(saved[0] ?? '', /^saved sunset\.png /);
    assert.match(saved[1] ?? '', /^saved checkerboard-dice\.png /);
    assert.equal(lines(result.stderr), [
      "imgcache: missing.png: refused: no image named 'missing.png' [image-not-found]",
    ]);
    for (const name of ['sunset.png', 'checkerboard-dice.png']) {
      assert.ok(readFileSync(path.join(downloads, name)).equals(readFileSync(path.join(SAMPLE_IMAGES, name))), name);
    }

    const json = await imgcache(['get', 'sunset.png', 'missing.png', '--json', ...where]);
    assert.is(json.status, 4);
    assert.is(json.stderr, '');
    const document = jsonLine(json.stdout) as { images: Array<Record<string, unknown>>; quota: { limit: number } };
    assert.equal(document.images[1], {
      name: 'missing.png',
      status: 'failed',
      error: { code: 'image-not-found', message: "no image named 'missing.png'" },
    });
    const first = document.images[0] as Record<string, unknown>;
    assert.is(first.status, 'not-modified');
    assert.equal(Object.keys(first).sort(), ['bytes', 'name', 'path', 'sha256', 'status']);
    assert.is(document.quota.limit, 20);
  });
});

test('get past the quota: the refusal that ends the session leaves the images after it skipped, and named', async () => {
  await withServer([108], async (live, downloads) => {
    const names = ['sunset.png', 'checkerboard-dice.png', 'mandelbrot.png', 'terrain-large.png', 'sunset.png'];
    const result = await imgcache(['get', ...names, '--port', String(live.port), '--cache-dir', downloads, '--json']);
    assert.is(result.status, 4);
    const document = jsonLine(result.stdout) as { images: Array<{ name: string; status: string }> };
    assert.equal(
      document.images.map((image) => image.status),
      ['downloaded', 'downloaded', 'downloaded', 'failed', 'skipped'],
    );
  });
});

test('a get that saved its image exits 0 even if the server closes before the goodbye', async () => {
  await withServer([950], async (live, downloads) => {
    // A proxy that forwards everything, but drops both sides when the client says goodbye (the exit request).
    const proxy = net.createServer((client) => {
      const upstream = net.connect(live.port, '127.0.0.1');
      const decoder = new FrameDecoder({ maxBodyBytes: 1 << 20 });
      client.on('error', () => {});
      upstream.on('error', () => {});
      upstream.pipe(client);
      client.on('data', (chunk: Buffer) => {
        const exiting = decoder
          .push(chunk)
          .some((frame) => frame.type === MessageType.REQUEST && frame.body.toString().includes('"exit"'));
        if (exiting) {
          client.destroy();
          upstream.destroy();
        } else upstream.write(chunk);
      });
      client.on('close', () => upstream.destroy());
    });
    proxy.listen(0, '127.0.0.1');
    await new Promise((resolve) => proxy.once('listening', resolve));
    try {
      const port = String((proxy.address() as net.AddressInfo).port);
      const result = await imgcache(['get', 'sunset.png', '--port', port, '--cache-dir', downloads]);
      assert.is(result.status, 0, result.stderr);
      assert.match(result.stdout, /^saved sunset\.png /);
      assert.ok(existsSync(path.join(downloads, 'sunset.png')));
    } finally {
      proxy.close();
    }
  });
});

test('pointed at an HTTP server, the client says so: "answered HTTP; this is not an imgcache server", status 5', async () => {
  const server = http.createServer((_request, response) => response.end('hello'));
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const result = await imgcache(['list', '--port', String(port)]);
    assert.is(result.status, 5);
    assert.is(result.stdout, '');
    assert.equal(lines(result.stderr), [`imgcache: 127.0.0.1:${port} answered HTTP; this is not an imgcache server`]);
    const json = await imgcache(['list', '--port', String(port), '--json']);
    assert.is(json.status, 5);
    assert.is((jsonLine(json.stderr).error as { code: string }).code, 'not-imgcache');
  } finally {
    server.close();
  }
});

test('an SSH banner, a line of text, or a first frame no server sends: each said for what it is', async () => {
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'), /answered with an SSH banner; this is not an imgcache server$/],
    [Buffer.from('-ERR unknown command\r\n'), /answered "-ERR unknown command"; this is not an imgcache server$/],
    // a header declaring 1213486160 bytes would once have been reported as such; also a plausible length, wrong type
    [Buffer.from([0x48, 0x54, 0x54, 0x50, 0x2f, 0x31]), /answered HTTP; this is not an imgcache server$/],
    [Buffer.from([0x00, 0x00, 0x00, 0x02, 0x11, 0x7b, 0x7d]), /answered bytes no imgcache server sends first/],
  ];
  for (const [greeting, expected] of cases) {
    const listener = await listenerSaying(greeting);
    try {
      const result = await imgcache(['list', '--port', String(listener.port)]);
      assert.is(result.status, 5, result.stderr);
      assert.match(result.stderr.trimEnd(), expected);
      assert.not.match(result.stderr, /declared/);
    } finally {
      listener.close();
    }
  }
});

test('usage errors: one line and the hint, status 2, nothing on stdout; --json makes it a JSON line', async () => {
  const unknown = await imgcache(['--fly']);
  assert.is(unknown.status, 2);
  assert.is(unknown.stdout, '');
  assert.equal(lines(unknown.stderr), ["imgcache: unknown option '--fly'", "run 'imgcache --help' for usage"]);
  const inCommand = await imgcache(['get', '--fly', 'sunset.png']);
  assert.is(inCommand.status, 2);
  assert.equal(lines(inCommand.stderr), ["imgcache: unknown option '--fly'", "run 'imgcache help get' for usage"]);

  for (const port of ['99999', '', '0x50', '0']) {
    const bad = await imgcache(['list', '--port', port]);
    assert.is(bad.status, 2, `--port '${port}'`);
    assert.match(lines(bad.stderr)[0] ?? '', /^imgcache: --port takes a port from 1 to 65535, not '.*'$/);
  }
  // [P-16] more than the server reads ahead of its answers is bad usage, not a session cut short
  for (const count of ['0', '17', 'x']) {
    const bad = await imgcache(['get', 'sunset.png', '--max-in-flight', count]);
    assert.is(bad.status, 2, `--max-in-flight '${count}'`);
    assert.equal(lines(bad.stderr), [
      `imgcache: --max-in-flight takes a count from 1 to 16, not '${count}'`,
      "run 'imgcache help get' for usage",
    ]);
  }
  const noCommand = await imgcache(['--port', '0']);
  assert.equal(lines(noCommand.stderr)[1], "run 'imgcache --help' for usage");
  const noImage = await imgcache(['get']);
  assert.is(noImage.status, 2);
  assert.equal(lines(noImage.stderr), ['imgcache: get needs an image name', "run 'imgcache help get' for usage"]);

  const json = await imgcache(['fly', '--json']);
  assert.is(json.status, 2);
  assert.equal(jsonLine(json.stderr), {
    error: { code: 'bad-usage', message: "unknown command 'fly'", status: 2 },
  });
});

test('--version, help and help <command> print on stdout and exit 0; help for an unknown command is bad usage', async () => {
  const version = JSON.parse(readFileSync(path.join(import.meta.dirname, '../package.json'), 'utf8')).version;
  const plain = await imgcache(['--version']);
  assert.is(plain.status, 0);
  assert.is(plain.stdout, `imgcache ${version}\n`);
  assert.equal(jsonLine((await imgcache(['--version', '--json'])).stdout), { name: 'imgcache', version });

  const overview = await imgcache(['help']);
  assert.is(overview.status, 0);
  assert.match(overview.stdout, /Each command is a session of its own/);
  for (const command of ['list', 'get', 'refresh', 'usage', 'shell']) {
    const one = await imgcache(['help', command]);
    assert.is(one.status, 0, command);
    assert.match(one.stdout, new RegExp(`^usage: imgcache ${command}`));
    assert.is(one.stderr, '');
  }
  assert.match((await imgcache(['get', '--help'])).stdout, /^usage: imgcache get <image>/);
  const unknown = await imgcache(['help', 'fly']);
  assert.is(unknown.status, 2);
  assert.is(unknown.stdout, '');
});

test('the overview gives each command a whole phrase that fits 120 columns, not a line cut mid-sentence', async () => {
  const overview = await imgcache(['--help']);
  const commandLines = overview.stdout.split('\n').filter((line) => line.startsWith('  imgcache '));
  assert.is(commandLines.length, 7, overview.stdout);
  for (const line of commandLines) {
    assert.ok(line.length <= 120, `too wide (${line.length}): ${line}`);
    assert.not.match(line, /\b(the|its|or|and|by|a|pipe them)$/, `cut mid-sentence: ${line}`);
  }
});

test('shell: answers on stdout, refusals and a mistyped command on stderr; the session goes on after them', async () => {
  await withServer([950], async (live, downloads) => {
    const args = ['shell', '--port', String(live.port), '--cache-dir', downloads];
    const script = 'get missing.png\nfoo\nget sunset.png\nexit\n';
    const { status, stdout, stderr } = await within(runCommand(CLIENT_BIN, args, {}, script), 'the shell exiting');
    assert.equal(lines(stderr), [
      "imgcache: missing.png: refused: no image named 'missing.png' [image-not-found]",
      "imgcache: unknown command 'foo'; type help for the commands",
    ]);
    assert.equal(lines(stdout).length, 1, stdout);
    assert.match(stdout, /^saved sunset\.png /);
    assert.is(status, 2, 'the status of the last failure');
  });
});

test('a server that cannot be reached: one line on stderr, status 5', async () => {
  const folder = makeTemporaryFolder();
  try {
    const listener = await listenerSaying(Buffer.alloc(0));
    const { port } = listener;
    listener.close();
    const result = await imgcache(['list', '--port', String(port), '--cache-dir', folder]);
    assert.is(result.status, 5);
    assert.is(result.stdout, '');
    assert.match(lines(result.stderr)[0] ?? '', /^imgcache: cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
