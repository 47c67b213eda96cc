/**
 * For end-to-end tests of the dashboard: the real `imgcache` command in a real terminal (tmux) against real test
 * servers on free ports. What a test file starts through one of these (servers, dashboards and their folders, and
 * whatever it adds to `closers`) is stopped and removed by `stop()`, which the file calls in `test.after`.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { CLIENT_BIN } from './processes.ts';
import { makeTemporaryFolder, startTestServer, type TestServer } from './test-server.ts';
import { type TmuxPane, TmuxServer } from './tmux.ts';

/** The screen's row that shows an image in the table: its name right inside the border, after the '›' marker if selected. */
export function tableRow(screen: string, image: string): string {
  return screen.split('\n').find((line) => line.includes(`│ ${image}`) || line.includes(`│›${image}`)) ?? '';
}

export interface StartedDashboard {
  pane: TmuxPane;
  /** the dashboard's --cache-dir */
  cacheDir: string;
  /** the folder it runs in */
  workDir: string;
}

export class DashboardTerminal {
  readonly folder: string;
  readonly terminal: TmuxServer;
  /** run at stop(), once the terminal is gone and before the servers stop */
  readonly closers: Array<() => void> = [];
  readonly #name: string;
  readonly #servers: TestServer[] = [];

  /** `name` tells this file's temporary folders apart. */
  constructor(name: string) {
    this.#name = name;
    this.folder = makeTemporaryFolder(`imgcache-dashboard-${name}-`);
    this.terminal = new TmuxServer(this.folder);
  }

  async server(options: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
    const started = await startTestServer(options);
    this.#servers.push(started);
    return started;
  }

  /** Stops one of the servers now, before the end of the file. */
  async stopServer(started: TestServer): Promise<void> {
    this.#servers.splice(this.#servers.indexOf(started), 1);
    await started.stop();
  }

  /** The dashboard connected to `port`, in a terminal of `size`, with a cache folder and a working folder of its own. */
  async startDashboard(
    name: string,
    port: number,
    size = { width: 80, height: 24 },
    env: Record<string, string> = {},
  ): Promise<StartedDashboard> {
    const cacheDir = path.join(this.folder, `${name}-cache`);
    const workDir = makeTemporaryFolder(`imgcache-${this.#name}-${name}-`);
    this.closers.push(() => rmSync(workDir, { recursive: true, force: true }));
    const argv = [process.execPath, CLIENT_BIN, '--port', String(port), '--cache-dir', cacheDir];
    const pane = await this.terminal.start(name, argv, { ...size, cwd: workDir, env });
    return { pane, cacheDir, workDir };
  }

  async stop(): Promise<void> {
    await this.terminal.kill();
    for (const close of this.closers) close();
    await Promise.all(this.#servers.map((started) => started.stop()));
    rmSync(this.folder, { recursive: true, force: true });
  }
}
