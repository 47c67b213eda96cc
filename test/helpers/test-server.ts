/**
 * Starts a real server for a test: 127.0.0.1, port 0, a real SQLite file in a fresh temporary folder, the sample
 * images of cache/ unless told otherwise. `stop()` closes the server and removes the folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT, type ServerConfig } from '../../src/config.ts';
import { sequenceOfCodes } from '../../src/server/code-source.ts';
import { type ImgcacheServer, startServer } from '../../src/server/server.ts';

export const SAMPLE_IMAGES = path.join(PACKAGE_ROOT, 'cache');

export interface TestServer {
  server: ImgcacheServer;
  port: number;
  folder: string;
  database: string;
  stop(): Promise<void>;
}

export function makeTemporaryFolder(prefix = 'imgcache-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export async function startTestServer(
  options: Partial<ServerConfig> & { codes?: number[]; folder?: string } = {},
): Promise<TestServer> {
  const folder = options.folder ?? makeTemporaryFolder();
  const database = options.database ?? path.join(folder, 'history.sqlite');
  const server = await startServer(
    { host: '127.0.0.1', port: 0, cacheDir: SAMPLE_IMAGES, ...options, database },
    { codeSource: sequenceOfCodes(options.codes ?? [108]) },
  );
  return {
    server,
    port: server.address.port,
    folder,
    database,
    stop: async () => {
      await server.close();
      if (!options.folder) rmSync(folder, { recursive: true, force: true });
    },
  };
}
