/**
 * Which files are images, and in what order [P-18] [P-38]: names the catalog must not hold are skipped and reported
 * once; the catalog is sorted by the code points of the names (the order of their UTF-8 bytes), not by UTF-16 units.
 */
import { mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImageCatalog, type SkippedFile } from '../src/server/image-catalog.ts';
import { compareImageNames, uncataloguedName } from '../src/server/image-name.ts';
import { makeTemporaryFolder } from './helpers/test-server.ts';

function withFolder(run: (folder: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const folder = makeTemporaryFolder('imgcache-names-');
    try {
      await run(folder);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  };
}

const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const byName = (a: SkippedFile, b: SkippedFile) => compareImageNames(a.name, b.name);

test('[P-38] names the catalog must not hold, and why; plain, accented and non-BMP names are fine', () => {
  const refused: Array<[string, string]> = [
    ['bell\x07.png', 'control-character'],
    ['tab\t.png', 'control-character'],
    ['new\nline.png', 'control-character'],
    ['del\x7f.png', 'control-character'],
    ['c1\u0085.png', 'control-character'],
    ['rlo\u202egnp.png', 'bidi-control'],
    ['bad\ufffd.png', 'not-utf8'],
    ['a\\b.png', 'path-separator'],
    ['%2e%2e%2fx.png', 'encoded-path'],
  ];
  for (const [name, reason] of refused) assert.is(uncataloguedName(name), reason, JSON.stringify(name));
  for (const name of ['sunset.png', 'été.png', 'e\u0301.png', '😀.png', 'ｚ.png', 'a b (1).png', '100%.png']) {
    assert.is(uncataloguedName(name), null, name);
  }
});

test(
  '[P-38] files with such names are not catalogued nor served; each is reported once, again only if it comes back',
  withFolder(async (folder) => {
    const bad = ['bell\x07.png', 'new\nline.png', 'rlo\u202egnp.png', 'a\\b.png'];
    for (const name of ['ok.png', ...bad]) writeFileSync(path.join(folder, name), name);
    // A name that is not UTF-8 on disk (byte 0xff) reads back with U+FFFD: no client could ask for it.
    writeFileSync(Buffer.concat([Buffer.from(`${folder}/x`), Buffer.from([0xff]), Buffer.from('.png')]), 'x');
    symlinkSync(path.join(folder, 'ok.png'), path.join(folder, 'link.png'));
    mkdirSync(path.join(folder, 'folder.png'));
    writeFileSync(path.join(folder, 'notes.txt'), 'not an image: not reported');
    const catalog = new ImageCatalog(folder, 1_000_000, { settleMs: 0 });
    const reported: SkippedFile[] = [];
    catalog.on('skipped', (skipped) => reported.push(skipped));
    catalog.load();
    assert.equal(
      catalog.list().map((image) => image.name),
      ['ok.png'],
    );
    for (const name of bad) assert.is(catalog.get(name), undefined, JSON.stringify(name));
    const expected: SkippedFile[] = [
      { name: 'a\\b.png', reason: 'path-separator' },
      { name: 'bell\x07.png', reason: 'control-character' },
      { name: 'folder.png', reason: 'not-a-regular-file' },
      { name: 'link.png', reason: 'symbolic-link' },
      { name: 'new\nline.png', reason: 'control-character' },
      { name: 'rlo\u202egnp.png', reason: 'bidi-control' },
      { name: 'x\ufffd.png', reason: 'not-utf8' },
    ];
    assert.equal(reported.sort(byName), expected);
    assert.equal(catalog.skipped().sort(byName), expected);
    await catalog.rescan();
    await catalog.rescan();
    assert.is(reported.length, expected.length, 'said once, not at every look');
    unlinkSync(path.join(folder, 'bell\x07.png'));
    await catalog.rescan();
    assert.not.ok(catalog.skipped().some((skipped) => skipped.name === 'bell\x07.png'));
    writeFileSync(path.join(folder, 'bell\x07.png'), 'back');
    await catalog.rescan();
    await catalog.rescan();
    assert.equal(reported.slice(expected.length), [{ name: 'bell\x07.png', reason: 'control-character' }]);
    assert.equal(
      catalog.list().map((image) => image.name),
      ['ok.png'],
    );
  }),
);

test('[P-18] compareImageNames is the order of UTF-8 bytes (code points), on random names beyond the BMP', () => {
  const pool = [
    'a',
    'z',
    'é',
    '\u0301',
    '\u00ff',
    '\ud7ff',
    '\ue000',
    '\uff5a',
    '\uffff',
    '😀',
    '\u{10000}',
    '\u{10ffff}',
  ];
  let seed = 7;
  const random = (below: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % below;
  };
  const names = Array.from({ length: 400 }, () =>
    Array.from({ length: 1 + random(4) }, () => pool[random(pool.length)]).join(''),
  );
  for (let index = 1; index < names.length; index++) {
    const [a, b] = [names[index - 1] ?? '', names[index] ?? ''];
    assert.is(Math.sign(compareImageNames(a, b)), Math.sign(byUtf8(a, b)), `${JSON.stringify(a)} ${JSON.stringify(b)}`);
  }
});

test(
  '[P-18] [P-38] list() is in code point order: accented names after z, U+FF5A before an emoji, NFD apart from NFC',
  withFolder(async (folder) => {
    const names = ['😀.png', 'ｚ.png', 'é.png', 'e\u0301.png', 'z.png', 'a.png', 'A.png', 'éa.png', '\u{10000}.png'];
    for (const name of names) writeFileSync(path.join(folder, name), name);
    const catalog = new ImageCatalog(folder, 1_000_000).load();
    const listed = catalog.list().map((image) => image.name);
    assert.equal(listed, [
      'A.png',
      'a.png',
      'e\u0301.png',
      'z.png',
      'é.png',
      'éa.png',
      'ｚ.png',
      '\u{10000}.png',
      '😀.png',
    ]);
    assert.equal(listed, [...names].sort(byUtf8), 'the order of the UTF-8 bytes');
  }),
);

test.run();
