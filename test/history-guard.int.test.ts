/**
 * The guard of a running server's history (db/history-guard.ts) stops the server when the history or its lock is
 * gone. A look that fails for another reason says nothing about them: with every file descriptor taken (a flood of
 * connections), the guard must not take the history for lost, nor stop the server.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeTemporaryFolder } from './helpers/test-server.ts';

const script = fileURLToPath(new URL('./helpers/bin/guard-without-descriptors.ts', import.meta.url));
const packageRoot = path.dirname(path.dirname(script.replace(/\/helpers\/bin\/[^/]+$/, '/x')));

test('with no file descriptor left, the guard cannot look, and does not take the history for lost', () => {
  const folder = makeTemporaryFolder();
  try {
    const output = execFileSync(
      'bash',
      ['-c', 'ulimit -n 64 && exec "$0" --import tsx "$1" "$2"', process.execPath, script, folder],
      { cwd: packageRoot, encoding: 'utf8', timeout: 30_000 },
    );
    const result = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    assert.is(result.exhausted, true, 'every descriptor was taken');
    assert.is(result.whileExhausted, null, 'no history lost while the look itself failed');
    assert.is(result.afterwards, null, 'nor once the descriptors are back');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
