import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, describeOptions, resolveConfig } from '../src/config.ts';

test('[P-90] --operator-port: off by default, off again by name, 0 for any free port, a port number', () => {
  assert.is(resolveConfig().operatorPort, null);
  assert.is(resolveConfig({ 'operator-port': 'off' }).operatorPort, null);
  assert.is(resolveConfig({ 'operator-port': '0' }).operatorPort, 0);
  assert.is(resolveConfig({}, { IMGCACHE_OPERATOR_PORT: '9100' }).operatorPort, 9100);
  assert.is(resolveConfig().operatorHost, '127.0.0.1');
  assert.is(resolveConfig({ 'operator-host': '0.0.0.0' }).operatorHost, '0.0.0.0');
  for (const bad of ['', 'on', '-1', '65536', '91OO']) {
    assert.throws(
      () => resolveConfig({ 'operator-port': bad }),
      (error: Error) => error instanceof ConfigError && error.message.includes('--operator-port'),
      `'${bad}'`,
    );
  }
});

test('[P-87] --proxy-protocol-from: none by default, a comma list of addresses and CIDR blocks, a bad entry refused', () => {
  assert.equal(resolveConfig().proxyProtocolFrom, []);
  const config = resolveConfig({}, { IMGCACHE_PROXY_PROTOCOL_FROM: '10.0.0.2, 10.1.0.0/16,::1' });
  assert.equal(config.proxyProtocolFrom, ['10.0.0.2', '10.1.0.0/16', '::1']);
  assert.ok(Object.isFrozen(config.proxyProtocolFrom));
  assert.throws(
    () => resolveConfig({ 'proxy-protocol-from': '10.0.0.2,balancer.local' }),
    (error: Error) => error instanceof ConfigError && /--proxy-protocol-from .*'balancer\.local'/.test(error.message),
  );
});

test('[P-87] [P-90] the help names the new options, their defaults and variables', () => {
  const help = describeOptions();
  assert.match(help, /--operator-port .*\n.*default off; env IMGCACHE_OPERATOR_PORT/);
  assert.match(help, /--operator-host .*\n.*default "127\.0\.0\.1"; env IMGCACHE_OPERATOR_HOST/);
  assert.match(help, /--proxy-protocol-from .*\n.*default none; env IMGCACHE_PROXY_PROTOCOL_FROM/);
});

test.run();
