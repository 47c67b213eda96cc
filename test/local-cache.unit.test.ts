/**
 * The client's cache folder and its manifest, without a server: the pure manifest parser and reconcile plan, and
 * LocalCache.open on real temporary folders (rebuilding a missing or damaged manifest from the files).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  formatManifest,
  LocalCache,
  MANIFEST_FILE,
  type ManifestRecord,
  parseManifest,
  planReconcile,
  UNKNOWN_SERVER,
} from '../client/local-cache.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

const SERVER = '127.0.0.1:7878';
const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

function record(name: string, overrides: Partial<ManifestRecord> = {}): ManifestRecord {
  return {
    name,
    sha256: sha(name),
    bytes: 10,
    fetchedAt: '2026-11-25T10:00:00.000Z',
    server: SERVER,
    mtimeMs: 1000,
    ...overrides,
  };
}

function withFolder(run: (folder: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const folder = makeTemporaryFolder('imgcache-local-');
    try {
      await run(folder);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  };
}

function manifestOf(folder: string): { images: Array<Record<string, unknown>> } {
  return JSON.parse(readFileSync(path.join(folder, MANIFEST_FILE), 'utf8'));
}

// --- pure parts ---------------------------------------------------------------------------------------------------

test('parseManifest reads what formatManifest writes', () => {
  const records = [record('b.png'), record('a.png', { server: UNKNOWN_SERVER })];
  const parsed = parseManifest(formatManifest(records));
  assert.equal(parsed, { records: [record('a.png', { server: UNKNOWN_SERVER }), record('b.png')], damaged: false });
});

test('parseManifest: text that is not a manifest is damaged and yields nothing', () => {
  for (const text of ['', '{', 'null', '[]', '{"format":"other","version":1,"images":[]}', '{"version":1}']) {
    assert.equal(parseManifest(text), { records: [], damaged: true }, text);
  }
});

test('parseManifest: unusable entries are left out and the manifest is called damaged', () => {
  const good = record('a.png');
  const bad = [
    { ...good, name: '../x.png' },
    { ...good, name: 'b.png', sha256: 'ABC' },
    { ...good, name: 'c.png', bytes: -1 },
    { ...good, name: 'd.png', fetchedAt: 'yesterday' },
    { ...good, name: 'e.png', mtimeMs: undefined },
    good,
    'not an object',
  ];
  const text = JSON.stringify({ format: 'imgcache-client-manifest', version: 1, images: bad });
  assert.equal(parseManifest(text), { records: [good], damaged: true });
});

test('planReconcile: trusts a record whose file kept its size and time; hashes the rest; drops the missing', () => {
  const plan = planReconcile(
    [record('same.png'), record('touched.png'), record('gone.png')],
    [
      { name: 'same.png', bytes: 10, mtimeMs: 1000 },
      { name: 'touched.png', bytes: 10, mtimeMs: 2000 },
      { name: 'new.png', bytes: 5, mtimeMs: 1000 },
    ],
  );
  assert.equal(
    plan.trusted.map((r) => r.name),
    ['same.png'],
  );
  assert.equal(
    plan.toHash.map((file) => file.name),
    ['touched.png', 'new.png'],
  );
  assert.equal(plan.dropped, ['gone.png']);
});

// --- LocalCache.open on a real folder -------------------------------------------------------------------------------

test(
  'open creates the folder and an empty manifest',
  withFolder(async (folder) => {
    const cacheFolder = path.join(folder, 'deep', 'cache');
    const cache = await LocalCache.open(cacheFolder, SERVER);
    assert.equal(cache.entries(), []);
    assert.equal(manifestOf(cacheFolder).images, []);
  }),
);

test(
  'a missing manifest is rebuilt from the files by hashing them; temporary and dot files are not images',
  withFolder(async (folder) => {
    writeFileSync(path.join(folder, 'a.png'), 'alpha');
    writeFileSync(path.join(folder, 'b.png'), 'beta!');
    writeFileSync(path.join(folder, '.a.png.1234abcd.part'), 'half');
    mkdirSync(path.join(folder, 'sub.png'));
    const cache = await LocalCache.open(folder, SERVER);
    assert.is(cache.rebuilt, true);
    assert.equal(
      cache.entries().map((entry) => [entry.name, entry.sha256, entry.bytes, entry.server]),
      [
        ['a.png', sha('alpha'), 5, UNKNOWN_SERVER],
        ['b.png', sha('beta!'), 5, UNKNOWN_SERVER],
      ],
    );
    assert.equal(
      manifestOf(folder).images.map((image) => image.name),
      ['a.png', 'b.png'],
    );
    const again = await LocalCache.open(folder, SERVER);
    assert.is(again.rebuilt, false, 'the manifest now matches the files');
    assert.equal(again.entries(), cache.entries());
  }),
);

test(
  'a manifest corrupted by hand is rebuilt from the files',
  withFolder(async (folder) => {
    writeFileSync(path.join(folder, 'a.png'), 'alpha');
    await LocalCache.open(folder, SERVER);
    writeFileSync(path.join(folder, MANIFEST_FILE), '{"format":"imgcache-client-manifest","images":[{"na');
    const cache = await LocalCache.open(folder, SERVER);
    assert.is(cache.rebuilt, true);
    assert.equal(cache.entry('a.png')?.sha256, sha('alpha'));
    assert.equal(manifestOf(folder).images.length, 1, 'the manifest was written again');
  }),
);

test(
  'open drops entries whose file is gone, adds files the manifest does not know, re-hashes files changed by hand',
  withFolder(async (folder) => {
    writeFileSync(path.join(folder, 'kept.png'), 'kept');
    writeFileSync(path.join(folder, 'gone.png'), 'gone');
    writeFileSync(path.join(folder, 'edited.png'), 'old!');
    const first = await LocalCache.open(folder, SERVER);
    assert.is(first.entries().length, 3);
    unlinkSync(path.join(folder, 'gone.png'));
    writeFileSync(path.join(folder, 'unknown.png'), 'new');
    writeFileSync(path.join(folder, 'edited.png'), 'new!'); // same size, new bytes
    utimesSync(path.join(folder, 'edited.png'), new Date(2030, 0, 1), new Date(2030, 0, 1));
    const cache = await LocalCache.open(folder, SERVER);
    assert.is(cache.rebuilt, true);
    assert.equal(
      cache.entries().map((entry) => [entry.name, entry.sha256]),
      [
        ['edited.png', sha('new!')],
        ['kept.png', sha('kept')],
        ['unknown.png', sha('new')],
      ],
    );
  }),
);

test(
  'stateOf: absent, current or stale by hash; pathOf refuses names that are not plain file names',
  withFolder(async (folder) => {
    writeFileSync(path.join(folder, 'a.png'), 'alpha');
    const cache = await LocalCache.open(folder, SERVER);
    assert.is(cache.stateOf({ name: 'a.png', sha256: sha('alpha') }), 'current');
    assert.is(cache.stateOf({ name: 'a.png', sha256: sha('other') }), 'stale');
    assert.is(cache.stateOf({ name: 'b.png', sha256: sha('alpha') }), 'absent');
    assert.is(cache.pathOf('a.png'), path.join(folder, 'a.png'));
    for (const name of ['../a.png', '/etc/passwd', '.hidden', '', 'a/b.png']) {
      assert.throws(() => cache.pathOf(name), /not a plain file name/, name);
    }
  }),
);

test.run();
