/**
 * [P-69] TLS from the outside: the CLI's --tls / --tls-ca (and their environment variables) against real servers on
 * 127.0.0.1, its messages and exit statuses when it refuses a certificate or one side does not speak TLS, and the
 * server's warning at start when keys would cross the network in clear.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXIT, main } from '../client/cli.ts';
import type { ServerConfig } from '../src/config.ts';
import { startServer } from '../src/server/server.ts';
import { makeCertificate } from './helpers/certificates.ts';
import { CLIENT_BIN, runCommand, spawnServer } from './helpers/processes.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';

const folder = makeTemporaryFolder('imgcache-tls-cli-');
const certificate = makeCertificate(folder);
const otherHost = makeCertificate(folder, { name: 'other', subjectAltName: 'DNS:imgcache.example', commonName: 'x' });
const cacheDir = path.join(folder, 'client-cache');

/** The CLI in-process: its exit status, what it printed on stdout and on stderr. */
async function cli(args: string[]): Promise<{ status: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(
    ['--cache-dir', cacheDir, ...args],
    (line) => out.push(line),
    (line) => err.push(line),
  );
  return { status, out: out.join('\n'), err: err.join('\n') };
}

test('[P-69] the CLI refuses a certificate it does not trust, and one for another host; trusts the one given', async () => {
  const secure = await startTestServer({ tlsCert: certificate.certFile, tlsKey: certificate.keyFile });
  const other = await startTestServer({ tlsCert: otherHost.certFile, tlsKey: otherHost.keyFile });
  try {
    const untrusted = await cli(['--tls', '--port', String(secure.port), 'list']);
    assert.is(untrusted.status, EXIT.unreachable);
    assert.match(untrusted.err, /the server's certificate is not trusted \(self-signed certificate\); pass --tls-ca/);
    assert.not.match(untrusted.err, /\n\s+at /, 'no stack trace');
    assert.is(untrusted.out, '');

    const mismatch = await cli(['--tls-ca', otherHost.certFile, '--port', String(other.port), 'list']);
    assert.is(mismatch.status, EXIT.unreachable);
    assert.match(mismatch.err, /the server's certificate is not for 127\.0\.0\.1 \(it is for DNS:imgcache\.example\)/);

    const trusted = await cli(['--tls-ca', certificate.certFile, '--port', String(secure.port), 'list']);
    assert.is(trusted.status, EXIT.ok, trusted.err);
    assert.match(trusted.out, /sunset\.png/);

    const json = await cli(['--json', '--tls', '--port', String(secure.port), 'list']);
    assert.equal(JSON.parse(json.err).error.code, 'tls-untrusted-certificate');
  } finally {
    await secure.stop();
    await other.stop();
  }
});

test('[P-69] the CLI says which side does not speak TLS', async () => {
  const secure = await startTestServer({ tlsCert: certificate.certFile, tlsKey: certificate.keyFile });
  const plain = await startTestServer();
  try {
    const plainToTls = await cli(['--port', String(secure.port), 'list']);
    assert.is(plainToTls.status, EXIT.rejected);
    assert.match(plainToTls.err, /this server speaks TLS only: connect with TLS .*\[tls-required\]/);
    const tlsToPlain = await cli(['--tls-ca', certificate.certFile, '--port', String(plain.port), 'list']);
    assert.is(tlsToPlain.status, EXIT.unreachable);
    assert.match(tlsToPlain.err, /127\.0\.0\.1:\d+ does not speak TLS .*connect without --tls/);
    const noCa = await cli(['--tls-ca', path.join(folder, 'missing.pem'), 'list']);
    assert.is(noCa.status, EXIT.usage);
    assert.match(noCa.err, /cannot read the CA file .*missing\.pem \(--tls-ca\): ENOENT/);
    // a key where the certificate should be: said, rather than every server refused as untrusted
    const notCa = await cli(['--tls-ca', certificate.keyFile, 'list']);
    assert.is(notCa.status, EXIT.usage);
    assert.match(notCa.err, /the CA file .*server-key\.pem \(--tls-ca\) holds no PEM certificate/);
  } finally {
    await secure.stop();
    await plain.stop();
  }
});

test('[P-69] the commands as run: imgcache-server --tls-cert/--tls-key, imgcache with IMGCACHE_TLS_CA', async () => {
  const database = path.join(folder, 'spawned.sqlite');
  const server = await spawnServer([
    '--database',
    database,
    '--tls-cert',
    certificate.certFile,
    '--tls-key',
    certificate.keyFile,
  ]);
  try {
    assert.is(server.logs.find((line) => line.msg === 'listening')?.tls, true);
    const port = String(server.port);
    const ok = await runCommand(CLIENT_BIN, ['--port', port, '--cache-dir', cacheDir, 'get', 'sunset.png'], {
      IMGCACHE_TLS_CA: certificate.certFile,
    });
    assert.is(ok.status, EXIT.ok, ok.stderr);
    assert.match(ok.stdout, /sunset\.png/);
    const refused = await runCommand(CLIENT_BIN, ['--port', port, 'list'], { IMGCACHE_TLS: '1' });
    assert.is(refused.status, EXIT.unreachable);
    assert.match(refused.stderr, /not trusted .*--tls-ca/);
    assert.not.match(refused.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

/** A server started with `options`, its log lines; stopped before returning. */
async function startLogs(options: Partial<ServerConfig>): Promise<string[]> {
  const log: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        log.push(String(chunk));
        done();
      },
    }),
  );
  const own = makeTemporaryFolder('imgcache-tls-warn-');
  try {
    // All interfaces, but nothing here connects other than to 127.0.0.1.
    const server = await startServer(
      { host: '0.0.0.0', port: 0, cacheDir: SAMPLE_IMAGES, database: path.join(own, 'h.sqlite'), ...options },
      { logger },
    );
    await server.close();
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
  return log;
}

test('[P-60] [P-69] keys off the loopback without TLS: said at start; with TLS, or open access: not', async () => {
  const clear = /keys in clear/;
  for (const access of ['keys', 'mixed'] as const) {
    const plain = await startLogs({ access });
    assert.ok(
      plain.some((line) => clear.test(line) && line.includes('"level":40')),
      `${access}: warned`,
    );
    const secure = await startLogs({ access, tlsCert: certificate.certFile, tlsKey: certificate.keyFile });
    assert.not.ok(
      secure.some((line) => clear.test(line)),
      `${access} with TLS: no warning`,
    );
    assert.ok(secure.some((line) => line.includes('"tls":true')));
  }
  const open = await startLogs({ access: 'open' });
  assert.not.ok(
    open.some((line) => clear.test(line)),
    'open: no warning',
  );
  const loopback = await startLogs({ access: 'keys', host: '127.0.0.1' });
  assert.not.ok(
    loopback.some((line) => clear.test(line)),
    'loopback: no warning',
  );
  // A dual-stack listener reports 127.0.0.0/8 IPv4-mapped: still the loopback.
  const mapped = await startLogs({ access: 'keys', host: '::ffff:127.0.0.2' });
  assert.not.ok(
    mapped.some((line) => clear.test(line)),
    'IPv4-mapped loopback: no warning',
  );
});

test.after(() => rmSync(folder, { recursive: true, force: true }));

test.run();
