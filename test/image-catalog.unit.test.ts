/**
 * The live catalog's parts without sockets [P-37]: the pure look planner, the memory policy, and the catalog itself
 * on a real temporary folder, looked at by hand (`rescan()`) so that every step is deterministic.
 */
import { once } from 'node:events';
import { appendFileSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type FileSignature, planLook, type SettlingFile } from '../src/server/catalog-scan.ts';
import { HotImageCache } from '../src/server/hot-image-cache.ts';
import { type CatalogChange, ImageCatalog, sha256Hex } from '../src/server/image-catalog.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const sig = (bytes: number, mtimeMs = 1000, ino = 1, dev = 1): FileSignature => ({ bytes, mtimeMs, ino, dev });

function bytesOf(length: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, index) => (index * 31 + seed) & 0xff));
}

function withFolder(run: (folder: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const folder = makeTemporaryFolder('imgcache-catalog-');
    try {
      await run(folder);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  };
}

/** The changes the catalog reports, for a test to look at after a step. */
function recordChanges(catalog: ImageCatalog): CatalogChange[] {
  const changes: CatalogChange[] = [];
  catalog.on('change', (change) => changes.push(change));
  return changes;
}

// --- planLook -----------------------------------------------------------------------------------------------------

test('[P-37] planLook: a new file starts settling, enters once unchanged for settleMs, not before', () => {
  const observed = new Map([['a.png', sig(10)]]);
  const first = planLook({ entries: new Map(), settling: new Map() }, observed, 1000, 500);
  assert.equal(first.started, ['a.png']);
  assert.equal(first.settled, []);
  const early = planLook({ entries: new Map(), settling: first.settling }, observed, 1499, 500);
  assert.equal([early.started, early.settled], [[], []]);
  assert.equal(early.settling.get('a.png'), { signature: sig(10), since: 1000 });
  const late = planLook({ entries: new Map(), settling: early.settling }, observed, 1500, 500);
  assert.equal(late.settled, [{ name: 'a.png', signature: sig(10) }]);
  assert.is(late.settling.size, 0);
});

test('[P-37] planLook: a file still being written (size or time changing) starts settling again', () => {
  const settling = new Map<string, SettlingFile>([['a.png', { signature: sig(10), since: 0 }]]);
  for (const changed of [sig(20), sig(10, 2000), sig(10, 1000, 2)]) {
    const plan = planLook({ entries: new Map(), settling }, new Map([['a.png', changed]]), 9999, 500);
    assert.equal(plan.started, ['a.png']);
    assert.equal(plan.settling.get('a.png'), { signature: changed, since: 9999 });
  }
});

test('[P-37] planLook: entries whose file is unchanged are left alone; gone ones are removed; so are settling ones', () => {
  const state = {
    entries: new Map([
      ['kept.png', sig(1)],
      ['gone.png', sig(2)],
      ['changed.png', sig(3)],
    ]),
    settling: new Map<string, SettlingFile>([['vanished.png', { signature: sig(4), since: 0 }]]),
  };
  const observed = new Map([
    ['kept.png', sig(1)],
    ['changed.png', sig(30)],
  ]);
  const plan = planLook(state, observed, 10, 500);
  assert.equal(plan.removed, ['gone.png']);
  assert.equal(plan.started, ['changed.png']);
  assert.equal([...plan.settling.keys()], ['changed.png']);
});

// --- HotImageCache ------------------------------------------------------------------------------------------------

test('hot images: least recently used goes first; a use makes an image the most recent', () => {
  const hot = new HotImageCache(300);
  hot.hold('a', 'ha', bytesOf(100, 1));
  hot.hold('b', 'hb', bytesOf(100, 2));
  hot.hold('c', 'hc', bytesOf(100, 3));
  assert.ok(hot.use('a', 'ha'), 'a is now the most recently used');
  hot.hold('d', 'hd', bytesOf(100, 4));
  assert.is(hot.use('b', 'hb'), null, 'b was the least recently used');
  assert.ok(hot.use('a', 'ha'));
  assert.is(hot.usedBytes, 300);
});

test('hot images: bytes of another version are never returned; too large is never held; holdIfRoom evicts nothing', () => {
  const hot = new HotImageCache(150);
  hot.hold('a', 'old', bytesOf(100, 1));
  assert.is(hot.use('a', 'new'), null);
  assert.is(hot.hold('big', 'x', bytesOf(151, 1)), false);
  assert.is(hot.holdIfRoom('b', 'hb', bytesOf(100, 2)), false);
  assert.ok(hot.has('a', 'old'));
  assert.is(hot.holdIfRoom('a', 'new', bytesOf(120, 3)), true, 'a new version of a held image replaces it');
  assert.is(hot.usedBytes, 120);
});

// --- ImageCatalog on a real folder ----------------------------------------------------------------------------------

test(
  'load: regular image files with their size, time and SHA-256; no symbolic links, folders, dot files or others',
  withFolder(async (folder) => {
    const content = bytesOf(500, 7);
    writeFileSync(path.join(folder, 'a.png'), content);
    writeFileSync(path.join(folder, 'notes.txt'), 'x');
    writeFileSync(path.join(folder, '.hidden.png'), 'x');
    mkdirSync(path.join(folder, 'folder.png'));
    symlinkSync(path.join(folder, 'a.png'), path.join(folder, 'link.png'));
    const catalog = new ImageCatalog(folder, 1_000_000).load();
    assert.equal(
      catalog.list().map((image) => [image.name, image.bytes, image.sha256]),
      [['a.png', 500, sha256Hex(content)]],
    );
    assert.ok(catalog.get('a.png')?.content?.equals(content), 'held in memory within the budget');
    for (const name of ['notes.txt', '.hidden.png', 'folder.png', 'link.png', '../a.png']) {
      assert.is(catalog.get(name), undefined, name);
    }
  }),
);

test(
  '[P-37] a half-written file does not enter while it grows; it enters with the hash of its whole bytes',
  withFolder(async (folder) => {
    const catalog = new ImageCatalog(folder, 1_000_000, { settleMs: 0 }).load();
    const changes = recordChanges(catalog);
    const settling: string[] = [];
    catalog.on('settling', (name) => settling.push(name));
    const file = path.join(folder, 'new.png');
    const whole = bytesOf(3000, 9);
    writeFileSync(file, whole.subarray(0, 1000));
    await catalog.rescan();
    assert.is(catalog.get('new.png'), undefined, 'seen once: settling');
    appendFileSync(file, whole.subarray(1000, 2000));
    await catalog.rescan();
    assert.is(catalog.get('new.png'), undefined, 'grew since the last look: settling again');
    appendFileSync(file, whole.subarray(2000));
    await catalog.rescan();
    await catalog.rescan();
    assert.equal(settling, ['new.png', 'new.png', 'new.png']);
    assert.is(catalog.get('new.png')?.sha256, sha256Hex(whole));
    assert.equal(changes, [{ kind: 'added', name: 'new.png', sha256: sha256Hex(whole), version: 1 }]);
  }),
);

test(
  '[P-37] a file enters only once it kept its size and time for settleMs, however many looks see it',
  withFolder(async (folder) => {
    const catalog = new ImageCatalog(folder, 1_000_000, { settleMs: 60_000 }).load();
    writeFileSync(path.join(folder, 'paused.png'), bytesOf(100, 1));
    for (let look = 0; look < 3; look++) await catalog.rescan();
    assert.is(catalog.get('paused.png'), undefined);
    assert.equal(catalog.list(), []);
  }),
);

test(
  '[P-37] a replaced file gets a new entry; an entry already handed out keeps its bytes and hash',
  withFolder(async (folder) => {
    const before = bytesOf(400, 1);
    const after = bytesOf(600, 2);
    writeFileSync(path.join(folder, 'a.png'), before);
    const catalog = new ImageCatalog(folder, 1_000_000, { settleMs: 0 }).load();
    const changes = recordChanges(catalog);
    const loaded = catalog.version;
    const inFlight = catalog.get('a.png');
    writeFileSync(path.join(folder, 'a.png'), after.subarray(0, 300)); // rewritten in place, half done
    await catalog.rescan();
    assert.is(
      catalog.get('a.png')?.sha256,
      sha256Hex(before),
      'while the file settles, the held old version is served',
    );
    writeFileSync(path.join(folder, 'a.png'), after);
    await catalog.rescan();
    await catalog.rescan();
    const current = catalog.get('a.png');
    assert.is(current?.sha256, sha256Hex(after));
    assert.ok(current?.content?.equals(after));
    assert.is(inFlight?.sha256, sha256Hex(before));
    assert.ok(inFlight?.content?.equals(before), 'the entry in flight was not touched');
    assert.equal(changes, [{ kind: 'changed', name: 'a.png', sha256: sha256Hex(after), version: loaded + 1 }]);
    assert.is(catalog.version, loaded + 1);
  }),
);

test(
  '[P-37] a file rewritten while not held in memory is missing until its new version settles',
  withFolder(async (folder) => {
    writeFileSync(path.join(folder, 'a.png'), bytesOf(400, 1));
    const catalog = new ImageCatalog(folder, 0, { settleMs: 0 }).load();
    assert.is(catalog.get('a.png')?.content, null, 'a budget of 0 holds nothing');
    writeFileSync(path.join(folder, 'a.png'), bytesOf(50, 2));
    await catalog.rescan();
    assert.is(catalog.get('a.png'), undefined, 'the disk no longer holds the bytes of the entry');
    assert.equal(catalog.list(), []);
    await catalog.rescan();
    assert.is(catalog.get('a.png')?.sha256, sha256Hex(bytesOf(50, 2)));
  }),
);

test(
  '[P-18] the list is sorted once per version of the catalog, not per list page, and follows every change',
  withFolder(async (folder) => {
    writeFileSync(path.join(folder, 'b.png'), bytesOf(10, 1));
    writeFileSync(path.join(folder, 'a.png'), bytesOf(10, 2));
    const catalog = new ImageCatalog(folder, 1_000_000, { settleMs: 0 }).load();
    const first = catalog.list();
    assert.equal(
      first.map((image) => image.name),
      ['a.png', 'b.png'],
    );
    assert.is(catalog.list(), first, 'the same version: the same list, not sorted again');
    assert.ok(Object.isFrozen(first), 'read only: a caller cannot reorder what the next one is given');
    writeFileSync(path.join(folder, 'c.png'), bytesOf(10, 3));
    await catalog.rescan(); // c.png is seen, and settles
    await catalog.rescan(); // c.png enters: a new version
    assert.equal(
      catalog.list().map((image) => image.name),
      ['a.png', 'b.png', 'c.png'],
    );
    unlinkSync(path.join(folder, 'a.png'));
    await catalog.rescan();
    assert.equal(
      catalog.list().map((image) => image.name),
      ['b.png', 'c.png'],
    );
  }),
);

test(
  '[P-37] a removed file leaves the catalog at the next look',
  withFolder(async (folder) => {
    writeFileSync(path.join(folder, 'a.png'), bytesOf(10, 1));
    writeFileSync(path.join(folder, 'b.png'), bytesOf(10, 2));
    const catalog = new ImageCatalog(folder, 1_000_000).load();
    assert.is(catalog.version, 2, 'each image entering counts, at load too');
    const changes = recordChanges(catalog);
    unlinkSync(path.join(folder, 'a.png'));
    await catalog.rescan();
    assert.is(catalog.get('a.png'), undefined);
    assert.equal(
      catalog.list().map((image) => image.name),
      ['b.png'],
    );
    assert.equal(changes, [{ kind: 'removed', name: 'a.png', sha256: null, version: 3 }]);
  }),
);

test(
  'memory: images are held in name order at load while the budget lasts; a cold image is read in after its use',
  withFolder(async (folder) => {
    writeFileSync(path.join(folder, 'a.png'), bytesOf(1000, 1));
    writeFileSync(path.join(folder, 'b.png'), bytesOf(1000, 2));
    const catalog = new ImageCatalog(folder, 1500).load();
    assert.equal(catalog.memoryUse(), { bytes: 1000, images: 1 });
    const held = once(catalog, 'held');
    assert.is(catalog.get('b.png')?.content, null, 'served from disk this time');
    assert.equal(await within(held, 'b.png read into memory'), ['b.png']);
    assert.ok(catalog.get('b.png')?.content?.equals(bytesOf(1000, 2)), 'held from now on');
    assert.is(catalog.get('a.png')?.content, null, 'the least recently used let go');
    assert.equal(catalog.memoryUse(), { bytes: 1000, images: 1 });
  }),
);

test(
  '[P-37] watch(): a file added while watching is seen without a hand-made look; close() stops watching',
  withFolder(async (folder) => {
    const catalog = new ImageCatalog(folder, 1_000_000, { rescanMs: 50 }).load().watch();
    try {
      const added = once(catalog, 'change');
      writeFileSync(path.join(folder, 'live.png'), bytesOf(64, 3));
      const [change] = (await within(added, 'the change of live.png')) as [CatalogChange];
      assert.equal([change.kind, change.name], ['added', 'live.png']);
    } finally {
      await catalog.close();
    }
    let looked = false;
    catalog.on('look', () => {
      looked = true;
    });
    await catalog.rescan();
    assert.is(looked, false, 'no look after close()');
  }),
);

test.run();
