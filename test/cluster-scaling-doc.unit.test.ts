/**
 * docs/SCALING.md shows the HAProxy configuration the cluster tests run: the example on the page is exactly what
 * test/helpers/haproxy.ts writes for its example values, and HAProxy accepts it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OPTION_SPECS, PACKAGE_ROOT, resolveConfig } from '../src/config.ts';
import { haproxyConfig, SCALING_DOC_EXAMPLE } from './helpers/haproxy.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

const page = readFileSync(path.join(PACKAGE_ROOT, 'docs/SCALING.md'), 'utf8');

test("SCALING.md's HAProxy example is the configuration the cluster tests run", () => {
  const shown = /```haproxy\n([\s\S]*?)```/.exec(page)?.[1];
  assert.ok(shown, 'the page has a haproxy block');
  assert.fixture(shown as string, haproxyConfig(SCALING_DOC_EXAMPLE));
});

test("HAProxy accepts the page's configuration (haproxy -c)", () => {
  const folder = makeTemporaryFolder('imgcache-haproxy-');
  try {
    const file = path.join(folder, 'imgcache-haproxy.cfg');
    writeFileSync(file, haproxyConfig(SCALING_DOC_EXAMPLE));
    const said = execFileSync('haproxy', ['-c', '-f', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(said, /Configuration file is valid/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("SCALING.md's three nodes start with options the server takes, each node on its own ports and name", () => {
  const lines = page.split('\n').filter((line) => line.startsWith('npm run -s server -- --'));
  assert.is(lines.length, 3, 'three node command lines');
  const known = new Set(OPTION_SPECS.map((spec) => spec.flag));
  const history = /export IMGCACHE_HISTORY=(\S+)/.exec(page)?.[1];
  assert.ok(history?.startsWith('postgres://'), 'the page sets IMGCACHE_HISTORY to a postgres:// URL');
  const nodes = lines.map((line) => {
    const words = line.slice('npm run -s server -- '.length).replace(/&\s*$/, '').trim().split(/\s+/);
    const flags: Record<string, string> = {};
    for (let index = 0; index < words.length; index += 2) {
      const flag = (words[index] ?? '').replace(/^--/, '');
      assert.ok(known.has(flag), `--${flag} is an option of imgcache-server`);
      flags[flag] = words[index + 1] ?? '';
    }
    return resolveConfig(flags, { IMGCACHE_HISTORY: history });
  });
  assert.is(new Set(nodes.map((node) => node.port)).size, 3);
  assert.is(new Set(nodes.map((node) => node.operatorPort)).size, 3);
  assert.is(new Set(nodes.map((node) => node.nodeName)).size, 3);
  for (const node of nodes) {
    assert.is(node.database, history);
    assert.equal([...node.proxyProtocolFrom], ['127.0.0.1']);
  }
});

test.run();
