/**
 * [P-69] TLS over real sockets on 127.0.0.1, with certificates made for the test: a keyed session end to end, the
 * client's checks of the certificate (trust, host name), plain text against TLS both ways, and hostile handshakes
 * (silent, stalled, garbage) that hold no slot and end within the handshake deadline.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { runClientsCommand } from '../src/clients-command.ts';
import { describeOptions, resolveConfig, tlsEnabled } from '../src/config.ts';
import { RejectedError, TlsError } from '../src/errors.ts';
import { encodeJsonFrame, MessageType } from '../src/protocol/index.ts';
import { makeCertificate, type TestCertificate } from './helpers/certificates.ts';
import { eventually, makeTemporaryFolder, SAMPLE_IMAGES, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const folder = makeTemporaryFolder('imgcache-tls-');
const certificate = makeCertificate(folder);
/** valid, but for another host than the one the tests connect to */
const otherHost = makeCertificate(folder, { name: 'other', subjectAltName: 'DNS:imgcache.example', commonName: 'x' });

function tlsOf(cert: TestCertificate) {
  return { tlsCert: cert.certFile, tlsKey: cert.keyFile };
}

/** Registers `name` in the history file and returns its key (printed once). */
function register(database: string, name: string, tier: string): string {
  let out = '';
  runClientsCommand(['add', name], { tier, json: false }, resolveConfig({ database }), {
    out: (text) => {
      out += text;
    },
    err: () => {},
  });
  return out.trim();
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('it succeeded');
}

test('[P-69] a keyed session over TLS: the WELCOME, an image whose bytes are the file, the peer address on record', async () => {
  const own = path.join(folder, 'keys');
  mkdirSync(own);
  const database = path.join(own, 'history.sqlite');
  const key = register(database, 'alice', 'gold');
  const running = await startTestServer({ folder: own, database, access: 'keys', ...tlsOf(certificate) });
  try {
    const client = await ImgcacheClient.connect({ port: running.port, credential: key, tls: { ca: certificate.pem } });
    assert.is(client.welcome.session.identity, 'alice');
    const pieces: Buffer[] = [];
    const result = await client.getInto('sunset.png', { write: (piece) => void pieces.push(piece) });
    const expected = readFileSync(path.join(SAMPLE_IMAGES, 'sunset.png'));
    assert.ok(Buffer.concat(pieces).equals(expected), 'the bytes received are the file');
    assert.is(result.end.sha256, createHash('sha256').update(expected).digest('hex'));
    await client.exit();
    const admitted = await running.waitForEvent((event) => event.type === 'session-admitted');
    assert.match(String((admitted.data as { remote?: unknown }).remote), /^127\.0\.0\.1:\d+$/);
  } finally {
    await running.stop();
  }
});

test('[P-69] the client refuses a certificate it does not trust, and one for another host', async () => {
  const running = await startTestServer(tlsOf(certificate));
  const other = await startTestServer(tlsOf(otherHost));
  try {
    // no CA given: the system's store, which does not hold a self-signed certificate of the test's
    const untrusted = await failureOf(ImgcacheClient.connect({ port: running.port, tls: {} }));
    assert.instance(untrusted, TlsError);
    assert.is((untrusted as TlsError).code, 'tls-untrusted-certificate');
    assert.match((untrusted as TlsError).message, /not trusted .*--tls-ca/);
    const mismatch = await failureOf(ImgcacheClient.connect({ port: other.port, tls: { ca: otherHost.pem } }));
    assert.instance(mismatch, TlsError);
    assert.is((mismatch as TlsError).code, 'tls-host-mismatch');
    assert.match((mismatch as TlsError).message, /not for 127\.0\.0\.1 \(it is for DNS:imgcache\.example\)/);
    // refused by the client before any HELLO: the server has no session on record
    assert.not.ok(running.events.some((event) => event.type === 'session-admitted'));
    // the same certificate, trusted: admitted
    const client = await ImgcacheClient.connect({ port: running.port, tls: { ca: certificate.pem } });
    await client.exit();
  } finally {
    await running.stop();
    await other.stop();
  }
});

test('[P-69] plain text against a TLS server is told tls-required; TLS against a plain server is told so', async () => {
  const secure = await startTestServer(tlsOf(certificate));
  const plain = await startTestServer();
  try {
    const rejected = await failureOf(ImgcacheClient.connect({ port: secure.port }));
    assert.instance(rejected, RejectedError);
    assert.is((rejected as RejectedError).reject.reason, 'tls-required');
    assert.equal((rejected as RejectedError).reject.occupancy, { open: 0, capacity: 3 });
    // [P-54] on record like any rejection, with the client's address
    const recorded = await secure.waitForEvent((event) => event.type === 'connection-rejected');
    assert.is((recorded.data as { reason?: unknown }).reason, 'tls-required');
    assert.match(String((recorded.data as { remote?: unknown }).remote), /^127\.0\.0\.1:\d+$/);
    const notTls = await failureOf(ImgcacheClient.connect({ port: plain.port, tls: { ca: certificate.pem } }));
    assert.instance(notTls, TlsError);
    assert.is((notTls as TlsError).code, 'tls-not-spoken');
    assert.match((notTls as TlsError).message, /does not speak TLS/);
  } finally {
    await secure.stop();
    await plain.stop();
  }
});

/** A TCP connection that sends `bytes` and resolves `closed` when the server closes it. */
async function rawPeer(port: number, bytes: Buffer): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  socket.resume();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((resolve) => socket.once('connect', resolve));
  if (bytes.length > 0) socket.write(bytes);
  return { socket, closed };
}

test('[P-69] [P-11] [P-43] silent, stalled and garbage TLS handshakes hold no slot and end by the handshake deadline', async () => {
  const running = await startTestServer({ ...tlsOf(certificate), capacity: 1, handshakeTimeoutMs: 1_500 });
  try {
    const silent = await rawPeer(running.port, Buffer.alloc(0));
    const stalled = await rawPeer(running.port, Buffer.from([0x16, 0x03, 0x01])); // a record header, never finished
    const garbage = await rawPeer(running.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef]));
    await within(garbage.closed, 'garbage closed');
    // the one slot is free for a real client while two handshakes hang
    const client = await ImgcacheClient.connect({ port: running.port, tls: { ca: certificate.pem } });
    assert.is(client.welcome.session.name.startsWith('client-'), true);
    const started = Date.now();
    await within(Promise.all([silent.closed, stalled.closed]), 'the stalled handshakes closed', 8_000);
    assert.ok(Date.now() - started < 6_000, 'closed by the handshake deadline');
    // [P-54] each is on record: the silent one and the stalled one rejected for their deadline, the garbage dropped
    const reasons = () =>
      running.events
        .filter((event) => event.type === 'connection-rejected' || event.type === 'connection-dropped')
        .map((event) => `${event.type}:${(event.data as { reason?: unknown }).reason}`)
        .sort();
    await eventually(() => reasons().length === 3, 'three connections on record');
    const [dropped, ...rejected] = reasons();
    assert.equal(rejected, ['connection-rejected:handshake-timeout', 'connection-rejected:handshake-timeout']);
    assert.match(dropped ?? '', /^connection-dropped:socket-error:ERR_SSL_/);
    await client.list(); // the server serves on
    await client.exit();
    await eventually(() => running.server.stats().connections === 0, 'no connection left');
  } finally {
    await running.stop();
  }
});

test('[P-69] [P-43] connections that have not sent their first byte are bounded per address, and on record', async () => {
  const running = await startTestServer({
    ...tlsOf(certificate),
    maxHandshakesPerAddress: 2,
    handshakeTimeoutMs: 5_000,
  });
  try {
    const first = await rawPeer(running.port, Buffer.alloc(0));
    const second = await rawPeer(running.port, Buffer.alloc(0));
    const third = await rawPeer(running.port, Buffer.alloc(0));
    const started = Date.now();
    await within(third.closed, 'the third closed at once', 4_000);
    assert.ok(Date.now() - started < 4_000, 'before the handshake deadline');
    const refused = await running.waitForEvent((event) => event.type === 'connection-rejected');
    assert.is((refused.data as { reason?: unknown }).reason, 'too-many-handshakes');
    first.socket.destroy();
    second.socket.destroy();
    const closed = (event: { type: string; data: unknown }) =>
      event.type === 'connection-dropped' && (event.data as { reason?: unknown }).reason === 'client-closed';
    await eventually(() => running.events.filter(closed).length === 2, 'both on record as closed by the client');
    const client = await ImgcacheClient.connect({ port: running.port, tls: { ca: certificate.pem } });
    await client.exit();
  } finally {
    await running.stop();
  }
});

test('[P-69] a certificate file that cannot be read, or a key without its certificate, stops the start', async () => {
  const missing = await failureOf(
    startTestServer({ folder, tlsCert: path.join(folder, 'none.pem'), tlsKey: certificate.keyFile }),
  );
  assert.match(String((missing as Error).message), /--tls-cert: cannot read .*none\.pem: ENOENT/);
  const alone = await failureOf(startTestServer({ folder, tlsKey: certificate.keyFile }));
  assert.match(String((alone as Error).message), /--tls-cert and --tls-key go together/);
  const mismatched = await failureOf(
    startTestServer({ folder, tlsCert: certificate.certFile, tlsKey: otherHost.keyFile }),
  );
  assert.match(String((mismatched as Error).message), /--tls-cert .* and --tls-key .*:/);
});

test('[P-69] --tls-cert and --tls-key from the environment, like every option, and in --help', () => {
  const config = resolveConfig({}, { IMGCACHE_TLS_CERT: certificate.certFile, IMGCACHE_TLS_KEY: certificate.keyFile });
  assert.is(config.tlsCert, certificate.certFile);
  assert.ok(tlsEnabled(config));
  assert.not.ok(tlsEnabled(resolveConfig()));
  assert.match(describeOptions(), /--tls-cert .*\n.*env IMGCACHE_TLS_CERT/);
  assert.match(describeOptions(), /--tls-key .*\n.*env IMGCACHE_TLS_KEY/);
});

test.after(() => rmSync(folder, { recursive: true, force: true }));

test('[P-69] a TLS 1.2 client cannot renegotiate its session (each would cost the server a full handshake)', async () => {
  const running = await startTestServer({ ...tlsOf(certificate) });
  try {
    const socket = tls.connect({
      port: running.port,
      host: '127.0.0.1',
      ca: certificate.pem,
      maxVersion: 'TLSv1.2',
      servername: 'localhost',
    });
    socket.on('error', () => {});
    await within(once(socket, 'secureConnect'), 'the TLS 1.2 handshake', 5_000);
    assert.is(socket.getProtocol(), 'TLSv1.2');
    socket.write(encodeJsonFrame(MessageType.HELLO, { versions: [1] }));
    await within(once(socket, 'data'), 'the WELCOME', 5_000);
    // Refused, or never answered: bounded here, since what is checked is that it does not succeed.
    let settle: (outcome: string) => void = () => {};
    const outcome = new Promise<string>((resolve) => {
      settle = resolve;
    });
    const unanswered = setTimeout(() => settle('not answered'), 2_000);
    socket.once('close', () => settle('closed'));
    if (!socket.renegotiate({}, (error) => settle(error ? 'refused' : 'renegotiated'))) settle('not started');
    const result = await outcome;
    clearTimeout(unanswered);
    assert.is.not(result, 'renegotiated');
    socket.destroy();
  } finally {
    await running.stop();
  }
});

test('[P-43] [P-69] a full pool of connections before TLS makes room for a newcomer from a less crowded address', async () => {
  const running = await startTestServer({ maxHandshakes: 4, maxHandshakesPerAddress: 2, ...tlsOf(certificate) });
  const silent: net.Socket[] = [];
  try {
    for (const localAddress of ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']) {
      const socket = net.connect({ port: running.port, host: '127.0.0.1', localAddress });
      socket.on('error', () => {});
      silent.push(socket);
      await within(once(socket, 'connect'), 'a silent connection', 5_000);
    }
    const closed = silent.map((socket) => once(socket, 'close').then(() => socket));
    // One more from 127.0.0.2, over its own bound, is closed at once: the four before it are in the pool by then.
    const probe = net.connect({ port: running.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    probe.on('error', () => {});
    probe.resume();
    await within(once(probe, 'close'), 'the connection over its address bound is closed', 5_000);
    const client = await ImgcacheClient.connect({ port: running.port, tls: { ca: certificate.pem } });
    assert.ok(client.welcome.session.name.startsWith('client-'), 'the newcomer from 127.0.0.1 is welcomed');
    const displaced = await within(Promise.race(closed), 'the oldest of a crowded address is closed', 5_000);
    assert.is(displaced, silent[0], 'the oldest of the first address holding the most');
    await eventually(
      () =>
        running.events.filter(
          (event) => event.type === 'connection-rejected' && event.data.reason === 'too-many-handshakes',
        ).length === 2,
      'its rejection on record, after the one over the bound',
    );
    await client.close();
  } finally {
    for (const socket of silent) socket.destroy();
    await running.stop();
  }
});

test.run();
