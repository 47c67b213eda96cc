import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  MAX_PROXY_HEADER_BYTES,
  PROXY_V2_FIXED_BYTES,
  ProxySourceListError,
  parseProxyHeader,
  parseProxySourceList,
  proxySourceMatcher,
} from '../src/server/proxy-protocol.ts';
import { proxyHeaderParseIsPrefixStable } from './fuzz/proxy-header-fuzz.ts';
import { fuzzSettings } from './fuzz/random.ts';
import { runCases } from './fuzz/run-cases.ts';
import { proxyV2Header, tlv } from './helpers/proxy-header.ts';

const HELLO_START = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x19, 0x01]);

test('[P-88] a TCP over IPv4 header: the source and destination, and where the client bytes begin', () => {
  const header = proxyV2Header({
    source: { address: '203.0.113.7', port: 40_123 },
    destination: { address: '10.1.2.3', port: 7878 },
  });
  assert.is(header.length, PROXY_V2_FIXED_BYTES + 12);
  const parsed = parseProxyHeader(Buffer.concat([header, HELLO_START]));
  assert.equal(parsed, {
    status: 'complete',
    header: {
      command: 'proxy',
      source: { address: '203.0.113.7', port: 40_123 },
      destination: { address: '10.1.2.3', port: 7878 },
      length: header.length,
    },
  });
});

test('[P-88] a TCP over IPv6 header: addresses in their short form, IPv4-mapped ones dotted', () => {
  const cases: Array<[string, string]> = [
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fe80:0:0:1:0:0:0:0', 'fe80:0:0:1::'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
    ['2001:0:0:1:0:0:0:2', '2001:0:0:1::2'],
    ['0:0:0:0:0:ffff:c000:0201', '::ffff:192.0.2.1'],
  ];
  for (const [written, expected] of cases) {
    const parsed = parseProxyHeader(
      proxyV2Header({ source: { address: written, port: 1 }, destination: { address: '::1', port: 2 } }),
    );
    assert.is(parsed.status, 'complete', written);
    if (parsed.status !== 'complete' || parsed.header.command !== 'proxy') continue;
    assert.equal(parsed.header.source, { address: expected, port: 1 }, written);
    assert.is(parsed.header.length, PROXY_V2_FIXED_BYTES + 36);
  }
});

test('[P-88] LOCAL (a health check of the balancer): complete, no address, whatever the family block says', () => {
  assert.equal(parseProxyHeader(proxyV2Header({ command: 'local' })), {
    status: 'complete',
    header: { command: 'local', length: PROXY_V2_FIXED_BYTES },
  });
  const withBlock = proxyV2Header({ command: 'local', familyTransport: 0x11 });
  assert.equal(parseProxyHeader(withBlock), {
    status: 'complete',
    header: { command: 'local', length: PROXY_V2_FIXED_BYTES + 12 },
  });
});

test('[P-88] PROXY with an unspecified or a UNIX family: complete, with no client address (the socket keeps its own)', () => {
  for (const familyTransport of [0x00, 0x31]) {
    const header = proxyV2Header({ familyTransport });
    assert.equal(parseProxyHeader(header), {
      status: 'complete',
      header: { command: 'proxy', source: null, destination: null, length: header.length },
    });
  }
});

test('[P-88] TLVs after the addresses are skipped: the header ends where its length says', () => {
  const tlvs = Buffer.concat([
    tlv(0x05, Buffer.from('unique-id-1')),
    tlv(0x04, Buffer.alloc(0)),
    tlv(0xe0, Buffer.alloc(300)),
  ]);
  const header = proxyV2Header({ tlvs });
  const parsed = parseProxyHeader(Buffer.concat([header, HELLO_START]));
  assert.is(parsed.status, 'complete');
  if (parsed.status === 'complete') assert.is(parsed.header.length, header.length);
});

test('[P-88] fed one byte at a time: incomplete until the last byte of the header, then complete', () => {
  for (const header of [
    proxyV2Header(),
    proxyV2Header({ source: { address: '::1', port: 9 } }),
    proxyV2Header({ command: 'local' }),
  ]) {
    for (let cut = 0; cut < header.length; cut++) {
      const parsed = parseProxyHeader(header.subarray(0, cut));
      assert.is(parsed.status, 'incomplete', `${cut} of ${header.length} bytes`);
      if (parsed.status === 'incomplete') assert.ok(parsed.needed > cut);
    }
    assert.is(parseProxyHeader(header).status, 'complete');
  }
});

test('[P-89] no signature: a client speaking the protocol straight away, a v1 text header, TLS, refused at the first wrong byte', () => {
  for (const start of [
    HELLO_START,
    Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 40123 7878\r\n'),
    Buffer.from([0x16, 0x03, 0x01]),
  ]) {
    assert.equal(parseProxyHeader(start), { status: 'invalid', problem: 'no-signature' });
    assert.equal(parseProxyHeader(start.subarray(0, 1)), { status: 'invalid', problem: 'no-signature' });
  }
  const header = proxyV2Header();
  header[11] = 0x0b;
  assert.equal(parseProxyHeader(header.subarray(0, 12)), { status: 'invalid', problem: 'no-signature' });
});

test('[P-89] a wrong version, command, family or transport is refused', () => {
  assert.equal(parseProxyHeader(proxyV2Header({ version: 1 })), { status: 'invalid', problem: 'bad-version' });
  assert.equal(parseProxyHeader(proxyV2Header({ version: 3 }).subarray(0, 13)), {
    status: 'invalid',
    problem: 'bad-version',
  });
  assert.equal(parseProxyHeader(proxyV2Header({ command: 0x2 })), { status: 'invalid', problem: 'bad-command' });
  for (const familyTransport of [0x12, 0x22, 0x41, 0x10, 0x01]) {
    assert.equal(
      parseProxyHeader(proxyV2Header({ familyTransport })),
      { status: 'invalid', problem: 'bad-family' },
      `family and transport 0x${familyTransport.toString(16)}`,
    );
  }
});

test('[P-89] a length too short for the addresses, or over the bound, is refused before its body is awaited', () => {
  const short = proxyV2Header({ declaredLength: 11 });
  assert.equal(parseProxyHeader(short.subarray(0, PROXY_V2_FIXED_BYTES)), { status: 'invalid', problem: 'too-short' });
  const long = proxyV2Header({ declaredLength: MAX_PROXY_HEADER_BYTES - PROXY_V2_FIXED_BYTES + 1 });
  assert.equal(parseProxyHeader(long.subarray(0, PROXY_V2_FIXED_BYTES)), { status: 'invalid', problem: 'too-long' });
  const longest = proxyV2Header({
    tlvs: tlv(0xe0, Buffer.alloc(MAX_PROXY_HEADER_BYTES - PROXY_V2_FIXED_BYTES - 12 - 3)),
  });
  assert.is(longest.length, MAX_PROXY_HEADER_BYTES);
  assert.is(parseProxyHeader(longest).status, 'complete', 'a header of exactly the bound is taken');
});

test('[P-88] [P-89] fuzz: the parse of any prefix agrees with the whole, whatever the cut; nothing throws', () => {
  runCases('PROXY header parse prefix-stable', proxyHeaderParseIsPrefixStable, fuzzSettings(), 3_000);
});

test('[P-87] trusted sources: addresses and CIDR blocks, IPv4 also when written IPv4-mapped', () => {
  const trusted = proxySourceMatcher(['127.0.0.1', '10.0.0.0/8', 'fd00::/8', '2001:db8::5']);
  for (const address of ['127.0.0.1', '::ffff:127.0.0.1', '10.200.3.4', '::ffff:10.0.0.1', 'fd12::1', '2001:db8::5']) {
    assert.ok(trusted(address), address);
  }
  for (const address of ['127.0.0.2', '11.0.0.1', 'fe80::1', '2001:db8::6', '', 'not-an-address']) {
    assert.not.ok(trusted(address), address);
  }
  assert.not.ok(proxySourceMatcher([])('127.0.0.1'), 'an empty list trusts no one');
});

test('[P-87] the list of --proxy-protocol-from: comma separated, spaces allowed; a bad entry is refused with its text', () => {
  assert.equal(parseProxySourceList(' 127.0.0.1, 10.0.0.0/8 ,::1,'), ['127.0.0.1', '10.0.0.0/8', '::1']);
  assert.equal(parseProxySourceList(''), []);
  for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.0/', '::1/129', '10.0.0.0/8/1', '10.0.0.0/x', '1.2.3']) {
    assert.throws(
      () => parseProxySourceList(`127.0.0.1,${bad}`),
      (error: Error) => error instanceof ProxySourceListError && error.message.includes(bad),
      bad,
    );
  }
});

test.run();
