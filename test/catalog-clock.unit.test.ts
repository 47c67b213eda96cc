/**
 * Settling is timed on a monotonic clock [P-37]: a wall clock stepped back an hour (an operator fixing the time, NTP
 * after a suspend) must not stall the catalog, as it did when settling subtracted Date.now() values. File times stay
 * what they were: part of a file's identity, never subtracted from anything.
 */
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CatalogChange, ImageCatalog } from '../src/server/image-catalog.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const HOUR_MS = 3_600_000;

/** Runs `run` with the wall clock (Date.now) stepped back an hour from `step()` on; puts it back afterwards. */
async function withWallClockStepBack(run: (step: () => void) => Promise<void>): Promise<void> {
  const realNow = Date.now;
  try {
    await run(() => {
      Date.now = () => realNow() - HOUR_MS;
    });
  } finally {
    Date.now = realNow;
  }
}

function withFolder(run: (folder: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const folder = makeTemporaryFolder('imgcache-clock-');
    try {
      await run(folder);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  };
}

test(
  '[P-37] settling follows the catalog clock (injected), whatever the wall clock does',
  withFolder(async (folder) => {
    let clock = 10_000;
    const catalog = new ImageCatalog(folder, 1_000_000, { settleMs: 500, now: () => clock }).load();
    await withWallClockStepBack(async (step) => {
      writeFileSync(path.join(folder, 'a.png'), 'x');
      await catalog.rescan();
      step();
      clock += 499;
      await catalog.rescan();
      assert.is(catalog.get('a.png'), undefined, 'not settled yet by the catalog clock');
      clock += 1;
      await catalog.rescan();
      assert.is(catalog.get('a.png')?.bytes, 1, 'settled by the catalog clock, an hour back on the wall clock');
    });
  }),
);

test(
  '[P-37] a watched catalog goes on taking files in after the wall clock is stepped back an hour',
  withFolder(async (folder) => {
    const catalog = new ImageCatalog(folder, 1_000_000, { rescanMs: 50 }).load().watch();
    try {
      await withWallClockStepBack(async (step) => {
        const seen = once(catalog, 'settling');
        const added = once(catalog, 'change');
        writeFileSync(path.join(folder, 'late.png'), 'x');
        await within(seen, 'late.png seen settling');
        step(); // between the look that saw the file and the one that should let it in
        const [change] = (await within(added, 'late.png entering', 3_000)) as [CatalogChange];
        assert.equal([change.kind, change.name], ['added', 'late.png']);
      });
    } finally {
      await catalog.close();
    }
  }),
);

test.run();
