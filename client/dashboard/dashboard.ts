/**
 * The blessed glue: a screen on the injected input and output streams, one panel per part of the screen, and a
 * loop that feeds every event (server message, library result, key press) to the pure reducer, runs the effects it
 * asks for, and renders at most once per turn of the event loop however many events arrived.
 */
import blessed from 'blessed';
import { RejectedError } from '../../src/protocol/index.ts';
import { ImgcacheClient } from '../imgcache-client.ts';
import { LocalCache } from '../local-cache.ts';
import { EffectRunner, failureOf } from './effects.ts';
import { computeLayout } from './layout.ts';
import { BANNER_ROWS, createBannerPanel } from './panels/banner-panel.ts';
import { createCommandLinePanel } from './panels/command-line-panel.ts';
import { createHeaderPanel } from './panels/header-panel.ts';
import { createHelpPanel } from './panels/help-panel.ts';
import { createImageTablePanel } from './panels/image-table-panel.ts';
import { createKeyBarPanel } from './panels/key-bar-panel.ts';
import { createLogPanel } from './panels/log-panel.ts';
import { place } from './panels/panel.ts';
import { createPreviewPanel } from './panels/preview-panel.ts';
import { createUsagePanel } from './panels/usage-panel.ts';
import { DASHBOARD_EXIT, initialViewState, update } from './view-state.ts';
import type { DashboardEvent, Effect, ViewState } from './view-state.types.ts';

export interface DashboardOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  host: string;
  port: number;
  cacheFolder: string;
  /** where the usage JSON is saved (default: the working folder) */
  usageFolder?: string;
  /** ms to say goodbye to the server when quitting, before just closing (default 1000) */
  goodbyeTimeoutMs?: number;
  now?: () => number;
}

export interface DashboardResult {
  status: number;
  /** what was printed after the screen was restored, if anything */
  message: string | null;
}

const CLIENT_NAME = 'imgcache-dashboard/0.1.0';

function setVisible(element: blessed.Widgets.BoxElement, visible: boolean): void {
  if (visible) element.show();
  else element.hide();
}

/** Runs the dashboard until the person quits (or the server turns us away); resolves with the exit status. */
export function runDashboard(options: DashboardOptions): Promise<DashboardResult> {
  const now = options.now ?? Date.now;
  const address = `${options.host}:${options.port}`;
  // @types/blessed declares the screen's `input` as a Writable and `output` as a Readable (swapped): hence the cast.
  const screen = blessed.screen({
    input: options.input,
    output: options.output,
    terminal: 'xterm-256color',
    smartCSR: true,
    fullUnicode: true,
    title: `imgcache ${address}`,
    warnings: false,
  } as unknown as blessed.Widgets.IScreenOptions);
  const panels = {
    header: createHeaderPanel(screen),
    table: createImageTablePanel(screen),
    preview: createPreviewPanel(screen),
    usage: createUsagePanel(screen),
    log: createLogPanel(screen),
    banner: createBannerPanel(screen),
    command: createCommandLinePanel(screen),
    keyBar: createKeyBarPanel(screen),
    help: createHelpPanel(screen),
  };

  let state: ViewState = initialViewState(address, options.cacheFolder);
  let client: ImgcacheClient | null = null;
  let runner: EffectRunner | null = null;
  let renderScheduled = false;
  let finished = false;
  let resolveResult: (result: DashboardResult) => void = () => {};
  const result = new Promise<DashboardResult>((resolve) => {
    resolveResult = resolve;
  });

  function render(): void {
    renderScheduled = false;
    if (finished) return;
    const layout = computeLayout(screen.width as number, screen.height as number, state.banner ? BANNER_ROWS : 0);
    place(panels.header.element, layout.header);
    place(panels.table.element, layout.table);
    place(panels.preview.element, layout.preview);
    place(panels.usage.element, layout.usage);
    place(panels.log.element, layout.log);
    place(panels.banner.element, layout.banner);
    place(panels.command.element, layout.command);
    place(panels.keyBar.element, layout.keyBar);
    const usage = state.main === 'usage';
    setVisible(panels.table.element, !usage);
    setVisible(panels.preview.element, !usage);
    setVisible(panels.usage.element, usage);
    setVisible(panels.banner.element, state.banner !== null);
    for (const panel of Object.values(panels)) panel.show(state);
    screen.render();
  }

  /** Many events may arrive in one turn (a burst of DATA frames): they all land in one frame on the screen. */
  function scheduleRender(): void {
    if (renderScheduled || finished) return;
    renderScheduled = true;
    setImmediate(render);
  }

  function dispatch(event: DashboardEvent): void {
    if (finished) return;
    const transition = update(state, event, now());
    state = transition.state;
    scheduleRender();
    for (const effect of transition.effects) runEffect(effect);
  }

  function runEffect(effect: Effect): void {
    if (effect.type === 'quit') void quit(effect.status, effect.message);
    else runner?.run(effect);
  }

  async function quit(status: number, message: string | null): Promise<void> {
    if (finished) return;
    finished = true;
    const open = client;
    if (open && !open.closed) {
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.goodbyeTimeoutMs ?? 1000).unref());
      await Promise.race([open.exit().catch(() => {}), timeout]);
      open.close();
    }
    screen.destroy();
    if (message) options.output.write(`${message}\n`);
    resolveResult({ status, message });
  }

  screen.on('keypress', (ch: string | undefined, key: { full?: string } | undefined) => {
    if (key?.full) dispatch({ type: 'key', key: { full: key.full, ch } });
  });
  screen.on('resize', scheduleRender);
  render();

  connect().catch((error: unknown) => dispatch({ type: 'unreachable', message: failureOf(error).message }));

  async function connect(): Promise<void> {
    let cache: LocalCache;
    try {
      cache = await LocalCache.open(options.cacheFolder, address);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return quit(DASHBOARD_EXIT.failed, `imgcache: cannot use the cache folder ${options.cacheFolder}: ${reason}`);
    }
    let connected: ImgcacheClient;
    try {
      connected = await ImgcacheClient.connect({ host: options.host, port: options.port, clientName: CLIENT_NAME });
    } catch (error) {
      if (error instanceof RejectedError) return dispatch({ type: 'rejected', reject: error.reject });
      return dispatch({ type: 'unreachable', message: failureOf(error).message });
    }
    if (finished) {
      connected.close();
      return;
    }
    client = connected;
    runner = new EffectRunner({
      client: connected,
      cache,
      usageFolder: options.usageFolder ?? process.cwd(),
      dispatch,
      quit: (status, message) => void quit(status, message),
    });
    connected.on('quota', (quota) => dispatch({ type: 'quota', quota }));
    connected.on('notice', (notice) => dispatch({ type: 'notice', notice }));
    connected.on('close', (error) =>
      dispatch({ type: 'connection-closed', message: error?.message ?? 'the server closed the connection' }),
    );
    const { session, quota, server } = connected.welcome;
    dispatch({ type: 'connected', server, session, quota });
  }

  return result;
}
