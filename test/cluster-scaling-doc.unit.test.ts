/**
 * docs/SCALING.md shows the HAProxy configuration the cluster tests run: the example on the page is exactly what
 * test/helpers/haproxy.ts writes for its example values, and HAProxy accepts it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PACKAGE_ROOT } from '../src/config.ts';
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

test.run();
