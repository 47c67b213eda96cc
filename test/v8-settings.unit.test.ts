import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serverV8Flags } from '../src/v8-settings.ts';

test('the server turns allocation-site pretenuring off when the operator said nothing of it', () => {
  assert.equal(serverV8Flags([]), ['--no-allocation-site-pretenuring']);
  assert.equal(serverV8Flags(['--enable-source-maps', '--max-semi-space-size=2']), [
    '--no-allocation-site-pretenuring',
  ]);
});

test("an operator who names the flag on node's command line, either way, keeps their choice", () => {
  assert.equal(serverV8Flags(['--allocation-site-pretenuring']), []);
  assert.equal(serverV8Flags(['--no-allocation-site-pretenuring']), []);
  assert.equal(serverV8Flags(['--max-semi-space-size=2', '--allocation_site_pretenuring']), []);
});

test('a flag that only contains the name is not taken for it', () => {
  assert.equal(serverV8Flags(['--trace-allocation-site-pretenuring-x']), ['--no-allocation-site-pretenuring']);
  assert.equal(serverV8Flags(['--trace-allocation-site-pretenuring']), ['--no-allocation-site-pretenuring']);
});

test.run();
