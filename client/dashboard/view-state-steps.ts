/**
 * The steps the dashboard's reducer is made of, shared by its two halves (what the server and the client library
 * report, in view-state.ts; what the person presses and types, in view-state-keys.ts). Pure, like the reducer.
 */
import type { Quota } from '../../src/protocol/index.ts';
import type { Effect, ImageRow, LogEntry, Tone, Transition, ViewState } from './view-state.types.ts';

/** Exit statuses, the same as the CLI's: 0 done, 1 failed, 3 rejected by the server, 5 server unreachable. */
export const DASHBOARD_EXIT = { ok: 0, failed: 1, rejected: 3, unreachable: 5 } as const;

/** the log keeps this many entries, the newest */
const LOG_LIMIT = 200;

/**
 * Banners rank by how much they explain: a warning (rank 0) gives way to a dropped connection (1), which gives way
 * to a session ended for a stated reason (2); the first stated reason stays.
 */
export const RANK = { warning: 0, dropped: 1, ended: 2 } as const;

export function addLog(state: ViewState, now: number, tone: Tone, text: string): ViewState {
  const entry: LogEntry = { at: now, tone, text };
  return { ...state, log: [...state.log, entry].slice(-LOG_LIMIT) };
}

export function bannerWins(state: ViewState, rank: number): boolean {
  const current = state.banner;
  return !current || current.rank < rank || (current.rank === rank && rank !== RANK.ended);
}

export function withBanner(state: ViewState, tone: Tone, text: string, rank: number): ViewState {
  return bannerWins(state, rank) ? { ...state, banner: { tone, text, rank } } : state;
}

export function quotaText(quota: Quota | null): string {
  return quota ? `${quota.remaining} of ${quota.limit} image requests left` : 'quota unknown';
}

export function shortHash(sha256: string): string {
  return `${sha256.slice(0, 12)}…`;
}

export function isConnected(state: ViewState): boolean {
  return state.connection.kind === 'connected';
}

export function whyNotConnected(state: ViewState): string {
  const connection = state.connection;
  if (connection.kind === 'connecting') return 'still connecting';
  if (connection.kind === 'connected') return 'connected';
  return connection.why;
}

export function quit(state: ViewState, status: number, message: string | null): Transition {
  return { state: { ...state, exit: { status, message } }, effects: [{ type: 'quit', status, message }] };
}

/** The message printed after an ordinary quit: why the session ended, when it ended on its own. */
export function farewell(state: ViewState): string | null {
  return state.connection.kind === 'closed' && state.banner ? `imgcache: ${state.banner.text}` : null;
}

/** Asks for a preview of the selected image when it has a saved copy that is not the one shown already. */
export function withPreview(state: ViewState, effects: Effect[] = []): Transition {
  const row = state.images[state.selected];
  if (!row?.saved) return { state: state.preview ? { ...state, preview: null } : state, effects };
  const saved = row.saved;
  if (state.preview?.name === row.name && state.preview.sha256 === saved.sha256) return { state, effects };
  return {
    state: {
      ...state,
      preview: { name: row.name, sha256: saved.sha256, status: 'loading', image: null, error: null },
    },
    effects: [...effects, { type: 'load-preview', name: row.name, path: saved.path, sha256: saved.sha256 }],
  };
}

export function updateRow(state: ViewState, name: string, change: (row: ImageRow) => ImageRow): ViewState {
  return { ...state, images: state.images.map((row) => (row.name === name ? change(row) : row)) };
}

export function select(state: ViewState, index: number): Transition {
  const selected = Math.max(0, Math.min(state.images.length - 1, index));
  return withPreview({ ...state, selected: Math.max(0, selected) });
}

/** The session is over: say why, in words, and keep everything else on the screen. */
export function endSession(state: ViewState, why: string, banner: string, rank: number): ViewState {
  const explains = bannerWins(state, rank);
  const closed: ViewState = {
    ...state,
    connection: explains || state.connection.kind !== 'closed' ? { kind: 'closed', why } : state.connection,
    images: state.images.map((row) => (row.download ? { ...row, download: null } : row)),
    usage: { ...state.usage, loading: false },
  };
  return withBanner(closed, 'error', banner, rank);
}

/** Enter on a row, or `get <image>` typed: ask for the download unless one is running or we are not connected. */
export function requestDownload(state: ViewState, now: number, name: string): Transition {
  if (!isConnected(state)) {
    return { state: addLog(state, now, 'warn', `cannot get ${name}: ${whyNotConnected(state)}`), effects: [] };
  }
  const row = state.images.find((image) => image.name === name);
  if (row?.download) return { state: addLog(state, now, 'info', `${name} is downloading already`), effects: [] };
  const started = updateRow(state, name, (image) => ({ ...image, download: { received: 0, total: image.bytes } }));
  return { state: addLog(started, now, 'info', `get ${name}`), effects: [{ type: 'download', name }] };
}

export function requestUsage(state: ViewState, now: number, typed: boolean): Transition {
  const identity = state.identity;
  if (!identity) return { state: addLog(state, now, 'warn', 'not connected yet'), effects: [] };
  if (!typed && !identity.canReadUsage) {
    const text = `usage is a platinum right: the ${identity.tier} tier may not read the usage history [P-22]`;
    return { state: addLog(state, now, 'warn', text), effects: [] };
  }
  if (!isConnected(state)) {
    const shown = state.usage.document ? { ...state, main: 'usage' as const, focus: 'usage' as const } : state;
    return { state: addLog(shown, now, 'warn', `cannot read usage: ${whyNotConnected(state)}`), effects: [] };
  }
  // A key opens the view at once (it fills in when the document arrives); a typed `usage` waits for the answer.
  const opened = typed ? state : { ...state, main: 'usage' as const, focus: 'usage' as const };
  return { state: { ...opened, usage: { ...opened.usage, loading: true } }, effects: [{ type: 'usage' }] };
}
