/**
 * For tests of the live catalog [P-37]: a private copy of the sample images that a test may change while the server
 * runs, and promises for the catalog's events (with a deadline, never a sleep).
 */
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { ServerConfig } from '../../src/config.ts';
import type { CatalogChange, ImageCatalog } from '../../src/server/image-catalog.ts';
import { makeTemporaryFolder, SAMPLE_IMAGES, startTestServer, type TestServer } from './test-server.ts';
import { within } from './within.ts';

/** A temporary folder holding `images/`, a copy of the sample images. */
export function copySampleImages(): { folder: string; images: string } {
  const folder = makeTemporaryFolder('imgcache-live-');
  const images = path.join(folder, 'images');
  cpSync(SAMPLE_IMAGES, images, { recursive: true });
  return { folder, images };
}

/** A test server over a private copy of the sample images (see copySampleImages); `stop()` removes it all. */
export interface LiveServer {
  test: TestServer;
  /** the temporary folder: the history, `images/`, and room for whatever else a test needs */
  folder: string;
  /** the folder the server serves, which the test may change */
  images: string;
  stop(): Promise<void>;
}

export async function startLiveServer(
  options: Partial<Omit<ServerConfig, 'codes'>> & { codes?: number[] } = {},
): Promise<LiveServer> {
  const { folder, images } = copySampleImages();
  const server = await startTestServer({ folder, cacheDir: images, ...options });
  return {
    test: server,
    folder,
    images,
    stop: async () => {
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

function nextEvent<T>(subscribe: (resolve: (value: T) => void) => () => void, what: string): Promise<T> {
  let unsubscribe = () => {};
  const seen = new Promise<T>((resolve) => {
    unsubscribe = subscribe(resolve);
  });
  return within(seen, what).finally(() => unsubscribe());
}

/** The next change of `name` in the catalog. Call it before changing the file. */
export function nextChange(catalog: ImageCatalog, name: string, kind?: CatalogChange['kind']): Promise<CatalogChange> {
  return nextEvent((resolve) => {
    const listener = (change: CatalogChange) => {
      if (change.name === name && (kind === undefined || change.kind === kind)) resolve(change);
    };
    catalog.on('change', listener);
    return () => catalog.off('change', listener);
  }, `a change of ${name}`);
}

/** The next time the catalog sees `name` new or changed, not yet settled. Call it before changing the file. */
export function nextSettling(catalog: ImageCatalog, name: string): Promise<void> {
  return nextEvent((resolve) => {
    const listener = (settling: string) => {
      if (settling === name) resolve();
    };
    catalog.on('settling', listener);
    return () => catalog.off('settling', listener);
  }, `${name} seen settling`);
}
