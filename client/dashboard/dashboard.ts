/**
 * The blessed glue: a screen on the injected input and output streams, one panel per part of the screen, and a
 * loop that feeds every event (server message, library result, key press, mouse action, signal) to the
 * pure reducer, runs the effects it asks for, and renders at most once per turn of the event loop however many
 * events arrived.
 */
import path from 'node:path';
import blessed from 'blessed';
import { RejectedError } from '../../src/protocol/index.ts';
import { ImgcacheClient } from '../imgcache-client.ts';
import { LocalCache } from '../local-cache.ts';
import type { ClientTlsOptions } from '../tls-connect.ts';
import { EffectRunner, failureOf } from './effects.ts';
import type { ColourMode } from './half-block-art.ts';
import { bannerRowsFor, computeLayout, type Layout, layoutFits, type Rect } from './layout.ts';
import { bannerLines, createBannerPanel } from './panels/banner-panel.ts';
import { createCommandLinePanel } from './panels/command-line-panel.ts';
import { createHeaderPanel } from './panels/header-panel.ts';
import { createHelpPanel } from './panels/help-panel.ts';
import { createImageTablePanel } from './panels/image-table-panel.ts';
import { createKeyBarPanel, keyAt } from './panels/key-bar-panel.ts';
import { createLogPanel } from './panels/log-panel.ts';
import { place } from './panels/panel.ts';
import { createPreviewPanel } from './panels/preview-panel.ts';
import { createTooSmallPanel } from './panels/too-small-panel.ts';
import { createUsagePanel } from './panels/usage-panel.ts';
import { DASHBOARD_EXIT, initialViewState, update } from './view-state.ts';
import type { DashboardEvent, Effect, MouseAction, ViewState } from './view-state.types.ts';

export interface DashboardOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  host: string;
  port: number;
  cacheFolder: string;
  /** [P-60] the client's key, sent in the HELLO (none: an anonymous session) */
  credential?: string;
  /** [P-69] connect with TLS, verifying the server's certificate (none: plain TCP) */
  tls?: ClientTlsOptions;
  /** where the usage JSON is saved (default: the cache folder's `usage` folder, never the working folder) */
  usageFolder?: string;
  /** ms to say goodbye to the server when quitting, before just closing (default 1000) */
  goodbyeTimeoutMs?: number;
  /** truecolor when the terminal says it takes it (COLORTERM), else 256 colours dithered (default) */
  colourMode?: ColourMode;
  /** ends the dashboard when one of these arrives, with status 128 + the signal's number (default SIGTERM, SIGHUP) */
  signals?: NodeJS.Signals[];
  now?: () => number;
}

/** xterm's title stack (XTWINOPS 22 and 23): keep the terminal's title and give it back at the end. */
const SAVE_TITLE = '\x1b[22;0t';
const RESTORE_TITLE = '\x1b[23;0t';

function inside(rect: Rect, x: number, y: number): boolean {
  return x >= rect.left && x < rect.left + rect.width && y >= rect.top && y < rect.top + rect.height;
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
  // The title is written here, not by blessed: under tmux blessed wraps it for the outer terminal, past the pane.
  options.output.write(`${SAVE_TITLE}\x1b]2;imgcache ${address}\x07`);
  // @types/blessed declares the screen's `input` as a Writable and `output` as a Readable (swapped): hence the cast.
  const screen = blessed.screen({
    input: options.input,
    output: options.output,
    terminal: 'xterm-256color',
    smartCSR: true,
    fullUnicode: true,
    warnings: false,
  } as unknown as blessed.Widgets.IScreenOptions);
  const panels = {
    header: createHeaderPanel(screen),
    table: createImageTablePanel(screen),
    preview: createPreviewPanel(screen, options.colourMode ?? '256'),
    usage: createUsagePanel(screen),
    log: createLogPanel(screen),
    banner: createBannerPanel(screen),
    command: createCommandLinePanel(screen),
    keyBar: createKeyBarPanel(screen),
    help: createHelpPanel(screen),
  };
  const tooSmall = createTooSmallPanel(screen);

  let state: ViewState = initialViewState(address, options.cacheFolder);
  let client: ImgcacheClient | null = null;
  let runner: EffectRunner | null = null;
  let renderScheduled = false;
  let finished = false;
  let layout: Layout | null = null;
  let overlayKey: string | null = null;
  let resolveResult: (result: DashboardResult) => void = () => {};
  const result = new Promise<DashboardResult>((resolve) => {
    resolveResult = resolve;
  });

  function render(): void {
    renderScheduled = false;
    if (finished) return;
    const width = screen.width as number;
    const height = screen.height as number;
    if (!layoutFits(width, height)) {
      renderTooSmall(width, height);
      return;
    }
    tooSmall.element.hide();
    layout = computeLayout(width, height, bannerLines(state, width, bannerRowsFor(height)).length);
    place(panels.header.element, layout.header);
    place(panels.table.element, layout.table);
    place(panels.preview.element, layout.preview);
    place(panels.usage.element, layout.usage);
    place(panels.log.element, layout.log);
    place(panels.banner.element, layout.banner);
    place(panels.command.element, layout.command);
    place(panels.keyBar.element, layout.keyBar);
    const usage = state.main === 'usage';
    // Shown again after the terminal was too small (the help shows and hides itself).
    for (const always of [panels.header, panels.log, panels.command, panels.keyBar]) always.element.show();
    setVisible(panels.table.element, !usage);
    setVisible(panels.preview.element, !usage);
    setVisible(panels.usage.element, usage);
    setVisible(panels.banner.element, state.banner !== null);
    for (const panel of Object.values(panels)) panel.show(state);
    screen.render();
    drawOverlay();
  }

  /** A terminal too small for the layout: one message over the whole screen, every panel hidden (q still quits). */
  function renderTooSmall(width: number, height: number): void {
    layout = null;
    overlayKey = null;
    for (const panel of Object.values(panels)) panel.element.hide();
    place(tooSmall.element, { top: 0, left: 0, width, height });
    tooSmall.show(state);
    tooSmall.element.show();
    screen.render();
  }

  /**
   * The truecolor picture, written past blessed (which holds 256 colours) over its own drawing of it. blessed only
   * rewrites cells whose content changed, so the picture needs writing again only when it, its place, or what covers
   * it changed: that is its key.
   */
  function drawOverlay(): void {
    const overlay = panels.preview.overlay(state);
    if (!overlay) {
      overlayKey = null;
      return;
    }
    if (overlay.key === overlayKey) return;
    overlayKey = overlay.key;
    let out = '\x1b7';
    for (const [index, line] of overlay.lines.entries())
      out += `\x1b[${overlay.top + index + 1};${overlay.left + 1}H${line}`;
    // Through blessed's own output buffer, so it lands after the frame blessed has just drawn, not before it.
    (screen.program as unknown as { _write(text: string): void })._write(`${out}\x1b8`);
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
    else if (effect.type === 'reconnect') reconnect();
    else runner?.run(effect);
  }

  async function quit(status: number, message: string | null): Promise<void> {
    if (finished) return;
    finished = true;
    for (const signal of signals) process.off(signal, onSignal);
    const open = client;
    if (open && !open.closed) {
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.goodbyeTimeoutMs ?? 1000).unref());
      await Promise.race([open.exit().catch(() => {}), timeout]);
      open.close();
    }
    screen.destroy();
    options.output.write(RESTORE_TITLE);
    if (message) options.output.write(`${message}\n`);
    resolveResult({ status, message });
  }

  /** Where a mouse action landed, in the reducer's terms; null when it touched nothing that reacts. */
  function placeMouse(data: { x: number; y: number; action: string }): MouseAction | null {
    if (!layout) return null;
    const { x, y, action } = data;
    const wheel = action === 'wheelup' ? -1 : action === 'wheeldown' ? 1 : 0;
    if (wheel !== 0) {
      if (inside(layout.log, x, y)) return { kind: 'wheel', panel: 'log', lines: wheel * 3 };
      if (state.main === 'usage' && inside(layout.usage, x, y))
        return { kind: 'wheel', panel: 'usage', lines: wheel * 3 };
      if (state.main === 'images' && inside(layout.table, x, y))
        return { kind: 'wheel', panel: 'images', lines: wheel };
      return null;
    }
    if (action !== 'mousedown') return null;
    if (y === layout.keyBar.top) {
      const key = keyAt(state, layout.keyBar.width, x);
      return key ? { kind: 'click-key', key } : null;
    }
    if (state.main === 'images' && inside(layout.table, x, y)) {
      const index = panels.table.rowAt(state, y - layout.table.top - 1);
      return index === null ? null : { kind: 'click-row', index };
    }
    return null;
  }

  const signals = options.signals ?? ['SIGTERM', 'SIGHUP'];
  function onSignal(signal: NodeJS.Signals): void {
    dispatch({ type: 'signal', signal });
  }
  for (const signal of signals) process.on(signal, onSignal);

  screen.on('keypress', (ch: string | undefined, key: { full?: string } | undefined) => {
    if (key?.full) dispatch({ type: 'key', key: { full: key.full, ch } });
  });
  screen.enableMouse();
  screen.on('mouse', (data: { x: number; y: number; action: string }) => {
    const mouse = placeMouse(data);
    if (mouse) dispatch({ type: 'mouse', mouse });
  });
  screen.on('resize', () => {
    overlayKey = null;
    scheduleRender();
  });
  render();

  connect().catch((error: unknown) => dispatch({ type: 'unreachable', message: failureOf(error).message }));

  /**
   * r once the session is over, or any action that needs the server once it closed the session for idleness: the
   * old connection is let go, and a new session opens on the same screen.
   */
  function reconnect(): void {
    client?.close();
    client = null;
    runner = null;
    connect().catch((error: unknown) => dispatch({ type: 'connection-closed', message: failureOf(error).message }));
  }

  async function connect(): Promise<void> {
    let cache: LocalCache;
    try {
      cache = await LocalCache.open(options.cacheFolder, address);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return quit(DASHBOARD_EXIT.failed, `imgcache: cannot use the cache folder ${options.cacheFolder}: ${reason}`);
    }
    let connected: ImgcacheClient;
    const first = state.sessions === 0;
    try {
      connected = await ImgcacheClient.connect({
        host: options.host,
        port: options.port,
        clientName: CLIENT_NAME,
        ...(options.credential === undefined ? {} : { credential: options.credential }),
        ...(options.tls === undefined ? {} : { tls: options.tls }),
      });
    } catch (error) {
      // At start the program ends (rejected: 3, unreachable: 5); a reconnect that fails leaves the screen as it was.
      if (!first) return dispatch({ type: 'reconnect-failed', message: reconnectFailure(error) });
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
      usageFolder: options.usageFolder ?? path.join(options.cacheFolder, 'usage'),
      dispatch,
      quit: (status, message) => void quit(status, message),
    });
    // Events of a connection let go by a reconnect are no longer the dashboard's business.
    const fromCurrent = (event: DashboardEvent) => {
      if (client === connected) dispatch(event);
    };
    connected.on('quota', (quota) => fromCurrent({ type: 'quota', quota }));
    connected.on('notice', (notice) => fromCurrent({ type: 'notice', notice }));
    connected.on('close', (error) =>
      fromCurrent({ type: 'connection-closed', message: error?.message ?? 'the server closed the connection' }),
    );
    // [P-70] The server tells of catalog changes (a NOTICE, by the 'notice' events above): no polling, so an open
    // dashboard the person leaves alone idles out like any session [P-27] and its slot can be reclaimed [P-44].
    const { session, quota, server } = connected.welcome;
    dispatch({ type: 'connected', server, session, quota });
  }

  function reconnectFailure(error: unknown): string {
    if (error instanceof RejectedError) {
      const retry =
        error.reject.retryAfterMs === undefined
          ? ''
          : `; try again in ${Math.ceil(error.reject.retryAfterMs / 1000)} s`;
      return `the server turned the new session away: ${error.reject.message}${retry}`;
    }
    return failureOf(error).message;
  }

  return result;
}
