/**
 * [P-87] [P-88] [P-89] PROXY protocol v2 on real sockets: a balancer's header names the client, whose address is then
 * the connection's everywhere (the records, the bound on handshakes per address); from any other address a header is
 * not honoured; from a listed address a connection without a valid header is dropped, on record.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NewEvent } from '../db/events.ts';
import { encodeJsonFrame, FrameDecoder, MessageType, parseJsonBody } from '../src/protocol/index.ts';
import { makeCertificate } from './helpers/certificates.ts';
import { proxyV2Header } from './helpers/proxy-header.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { eventually, makeTemporaryFolder, startTestServer, type TestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const CLIENT = { address: '203.0.113.7', port: 40_123 };

function header(source = CLIENT, command: 'proxy' | 'local' = 'proxy'): Buffer {
  return proxyV2Header({ command, source, destination: { address: '127.0.0.1', port: 7878 } });
}

const HELLO = encodeJsonFrame(MessageType.HELLO, { versions: [1] });

const admittedEvent = (event: NewEvent) => event.type === 'session-admitted';

/** Connects, sends `before` and a HELLO in one write, reads the WELCOME: the peer, and its session's remote on record. */
async function admittedAfter(server: TestServer, before: Buffer): Promise<{ peer: RawConnection; remote: string }> {
  const peer = await RawConnection.open(server.port);
  peer.send(Buffer.concat([before, HELLO]));
  const welcome = await within(peer.nextJson(MessageType.WELCOME), 'WELCOME');
  const session = Number((welcome.session as { name: string }).name.replace('client-', ''));
  const admitted = await server.waitForEvent((event) => admittedEvent(event) && event.session === session);
  return { peer, remote: (admitted.data as { remote: string }).remote };
}

/** The drop on record of the connection `peer` opened (its remote is the socket's: no header named a client). */
async function droppedReason(server: TestServer, peer: RawConnection): Promise<{ reason: string; remote: string }> {
  const remote = `127.0.0.1:${peer.socket.localPort}`;
  const event = await within(
    server.waitForEvent((candidate) => candidate.type === 'connection-dropped' && candidate.data.remote === remote),
    `the drop of ${remote} on record`,
  );
  return event.data as { reason: string; remote: string };
}

test('[P-87] from a listed address, the header names the client: its address and port are the remote on record', async () => {
  const server = await startTestServer({ proxyProtocolFrom: ['127.0.0.1'] });
  try {
    const { peer, remote } = await admittedAfter(server, header());
    assert.is(remote, '203.0.113.7:40123');
    peer.destroy();
    await within(
      server.waitForEvent((event) => event.type === 'session-closed'),
      'the close on record',
    );
  } finally {
    await server.stop();
  }
});

test('[P-88] the header may come in pieces, and the HELLO after it in a write of its own; IPv6 clients too', async () => {
  const server = await startTestServer({ proxyProtocolFrom: ['127.0.0.0/8'] });
  try {
    const bytes = header({ address: '2001:db8::42', port: 5_000 });
    const peer = await RawConnection.open(server.port);
    for (const piece of [bytes.subarray(0, 5), bytes.subarray(5, 14), bytes.subarray(14)]) {
      peer.send(piece);
      await new Promise((resolve) => peer.socket.write('', resolve));
    }
    peer.hello();
    await within(peer.nextJson(MessageType.WELCOME), 'WELCOME');
    const admitted = await server.waitForEvent(admittedEvent);
    assert.is((admitted.data as { remote: string }).remote, '2001:db8::42:5000');
    peer.destroy();
  } finally {
    await server.stop();
  }
});

test('[P-87] [P-43] the bound on handshakes per address counts the client the header names, not the balancer', async () => {
  const server = await startTestServer({ proxyProtocolFrom: ['127.0.0.1'], maxHandshakesPerAddress: 1 });
  const peers: RawConnection[] = [];
  try {
    const first = await RawConnection.open(server.port);
    peers.push(first);
    first.send(header({ address: '198.51.100.1', port: 1_001 })); // in its handshake: no HELLO yet
    await eventually(() => server.server.stats().connections === 1, 'the first client in its handshake');
    // Another client through the same balancer is not held back by the first's handshake.
    const other = await admittedAfter(server, header({ address: '198.51.100.2', port: 1_002 }));
    peers.push(other.peer);
    assert.is(other.remote, '198.51.100.2:1002');
    // The first client's second connection is.
    const again = await RawConnection.open(server.port);
    peers.push(again);
    again.send(Buffer.concat([header({ address: '198.51.100.1', port: 1_003 }), HELLO]));
    const reject = await within(again.nextJson(MessageType.REJECT), 'REJECT of the same address');
    assert.is(reject.reason, 'too-many-handshakes');
    const rejected = await server.waitForEvent((event) => event.type === 'connection-rejected');
    assert.is((rejected.data as { remote: string }).remote, '198.51.100.1:1003');
  } finally {
    for (const peer of peers) peer.destroy();
    await server.stop();
  }
});

test('[P-87] from an address not listed, a header is not honoured: its bytes are the protocol, the socket names the peer', async () => {
  const server = await startTestServer({ proxyProtocolFrom: ['10.9.9.9'] });
  try {
    const spoofing = await RawConnection.open(server.port);
    spoofing.send(Buffer.concat([header(), HELLO]));
    const reject = await within(spoofing.nextJson(MessageType.REJECT), 'REJECT of a HELLO that is not one');
    assert.ok(['bad-hello', 'frame-too-large'].includes(String(reject.reason)), String(reject.reason));
    const rejected = await server.waitForEvent((event) => event.type === 'connection-rejected');
    assert.is((rejected.data as { remote: string }).remote, `127.0.0.1:${spoofing.socket.localPort}`);
    spoofing.destroy();
    const plain = await admittedAfter(server, Buffer.alloc(0));
    assert.is(plain.remote, `127.0.0.1:${plain.peer.socket.localPort}`);
    plain.peer.destroy();
  } finally {
    await server.stop();
  }
});

test('[P-88] LOCAL (the balancer speaking for itself): the connection keeps the socket address', async () => {
  const server = await startTestServer({ proxyProtocolFrom: ['127.0.0.1'] });
  try {
    const { peer, remote } = await admittedAfter(server, header(CLIENT, 'local'));
    assert.is(remote, `127.0.0.1:${peer.socket.localPort}`);
    peer.destroy();
  } finally {
    await server.stop();
  }
});

test('[P-89] from a listed address, a missing, malformed, truncated or late header: dropped without an answer, on record', async () => {
  const server = await startTestServer({ proxyProtocolFrom: ['127.0.0.1'], handshakeTimeoutMs: 300 });
  try {
    const cases: Array<{ bytes: Buffer; end: boolean; reason: string }> = [
      { bytes: HELLO, end: false, reason: 'proxy-header-missing' },
      {
        bytes: Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 40123 7878\r\n'),
        end: false,
        reason: 'proxy-header-missing',
      },
      { bytes: proxyV2Header({ version: 1 }), end: false, reason: 'proxy-header-invalid:bad-version' },
      { bytes: proxyV2Header({ familyTransport: 0x12 }), end: false, reason: 'proxy-header-invalid:bad-family' },
      { bytes: proxyV2Header({ declaredLength: 5_000 }), end: false, reason: 'proxy-header-invalid:too-long' },
      { bytes: header().subarray(0, 20), end: true, reason: 'proxy-header-truncated' },
      { bytes: header().subarray(0, 20), end: false, reason: 'proxy-header-timeout' },
      { bytes: Buffer.alloc(0), end: true, reason: 'client-closed' },
    ];
    for (const { bytes, end, reason } of cases) {
      const peer = await RawConnection.open(server.port);
      if (bytes.length > 0) peer.send(bytes);
      if (end) peer.socket.end();
      const dropped = await droppedReason(server, peer);
      assert.is(dropped.reason, reason);
      assert.is(await within(peer.next(), 'the close'), null, `${reason}: closed without a frame`);
      peer.destroy();
    }
    assert.not.ok(server.events.some(admittedEvent), 'no session');
  } finally {
    await server.stop();
  }
});

test('[P-87] [P-69] the header comes before the TLS bytes: a TLS client through the balancer is on record by its address', async () => {
  const folder = makeTemporaryFolder();
  const certificate = makeCertificate(folder);
  const server = await startTestServer({
    folder,
    proxyProtocolFrom: ['127.0.0.1'],
    tlsCert: certificate.certFile,
    tlsKey: certificate.keyFile,
  });
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  try {
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(header());
    const secure = tls.connect({ socket, ca: certificate.pem, servername: 'localhost' });
    await within(new Promise((resolve) => secure.once('secureConnect', resolve)), 'the TLS handshake');
    const decoder = new FrameDecoder({ maxBodyBytes: 1_048_576 });
    const welcome = within(
      new Promise<Record<string, unknown>>((resolve) =>
        secure.on('data', (chunk: Buffer) => {
          const [frame] = decoder.push(chunk);
          if (frame) resolve({ type: frame.type, ...parseJsonBody(frame.body) });
        }),
      ),
      'WELCOME over TLS',
    );
    secure.write(HELLO);
    assert.is((await welcome).type, MessageType.WELCOME);
    const admitted = await server.waitForEvent(admittedEvent);
    assert.is((admitted.data as { remote: string }).remote, '203.0.113.7:40123');
    secure.destroy();
  } finally {
    socket.destroy();
    await server.stop();
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
