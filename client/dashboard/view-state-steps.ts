/**
 * The steps the dashboard's reducer is made of, shared by its two halves (what the server and the client library
 * report, in view-state.ts; what the person presses and types, in view-state-keys.ts). Pure, like the reducer.
 */
import type { Quota } from '../../src/protocol/index.ts';
import type { Effect, ImageRow, LogEntry, Resume, SortKey, Tone, Transition, ViewState } from './view-state.types.ts';

/**
 * Exit statuses, those of the CLI where they mean the same: 0 the person quit while the session was open, or after
 * the server closed it for idleness (nothing went wrong), 1 failed, 3 rejected by the server, 5 server unreachable;
 * 6 the session had ended otherwise (the server ended it, or the connection dropped) when the person quit; 128 + n
 * when a signal ended the program (143 for SIGTERM, 129 for SIGHUP).
 */
export const DASHBOARD_EXIT = { ok: 0, failed: 1, rejected: 3, unreachable: 5, ended: 6 } as const;

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** The shell's convention for a program a signal ended: 128 plus the signal's number. */
export function signalStatus(signal: string): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 15);
}

/** the log keeps this many entries, the newest */
const LOG_LIMIT = 200;

/**
 * Banners rank by how much they explain: a warning (rank 0) gives way to a dropped connection (1), which gives way
 * to a session ended for a stated reason (2); the first stated reason stays.
 */
export const RANK = { warning: 0, dropped: 1, ended: 2 } as const;

export function addLog(state: ViewState, now: number, tone: Tone, text: string): ViewState {
  const entry: LogEntry = { at: now, tone, text };
  // A log scrolled back stays on what the person reads: the new entry comes in below, out of view.
  const logScroll = state.logScroll > 0 ? state.logScroll + 1 : 0;
  return { ...state, log: [...state.log, entry].slice(-LOG_LIMIT), logScroll: Math.min(logScroll, LOG_LIMIT - 1) };
}

const BY: Record<SortKey, (a: ImageRow, b: ImageRow) => number> = {
  // [P-38] the catalog's own order: the UTF-8 bytes of the names (code point order)
  name: (a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)),
  size: (a, b) => b.bytes - a.bytes || BY.name(a, b),
  date: (a, b) => Date.parse(b.modified) - Date.parse(a.modified) || BY.name(a, b),
};

/** The images in the order chosen: by name, by size (largest first), by date (newest first). */
export function sortImages(images: readonly ImageRow[], sort: SortKey): ImageRow[] {
  return [...images].sort(BY[sort]);
}

/** The rows the table shows: every image, or those whose name contains the search text (any case). */
export function visibleImages(state: ViewState): ImageRow[] {
  if (state.search === '') return state.images;
  const needle = state.search.toLowerCase();
  return state.images.filter((row) => row.name.toLowerCase().includes(needle));
}

export function selectedRow(state: ViewState): ImageRow | undefined {
  return visibleImages(state)[state.selected];
}

/** The index among the rows shown of the image called `name`, or -1. */
export function indexOf(state: ViewState, name: string | undefined): number {
  return name === undefined ? -1 : visibleImages(state).findIndex((row) => row.name === name);
}

/** After the rows shown changed (search, sort, a new list): the same image stays selected when it is still shown. */
export function keepSelection(before: ViewState, after: ViewState): ViewState {
  const index = indexOf(after, selectedRow(before)?.name);
  const count = visibleImages(after).length;
  const selected = index >= 0 ? index : Math.max(0, Math.min(after.selected, count - 1));
  return { ...after, selected };
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

/** [P-27] [P-44] The server closed the session for idleness: the next action that needs it opens a new one. */
export function closedForIdleness(state: ViewState): boolean {
  return state.connection.kind === 'closed' && state.connection.idle === true;
}

/** How long a session had gone without a request, in words: "40 seconds", "1 minute", "5 minutes". */
export function idleDuration(ms: number): string {
  const seconds = Math.max(1, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.round(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

export function whyNotConnected(state: ViewState): string {
  const connection = state.connection;
  if (connection.kind === 'connecting') return 'still connecting';
  if (connection.kind === 'connected') return 'connected';
  return connection.why;
}

/**
 * The status of an ordinary quit: 0 while the session is open or once the server closed it for idleness, 6 once the
 * server or the network ended it otherwise.
 */
export function quitStatus(state: ViewState): number {
  return state.connection.kind === 'closed' && !closedForIdleness(state) ? DASHBOARD_EXIT.ended : DASHBOARD_EXIT.ok;
}

export function quit(state: ViewState, status: number, message: string | null): Transition {
  return { state: { ...state, exit: { status, message } }, effects: [{ type: 'quit', status, message }] };
}

/** The message printed after an ordinary quit: why the session ended, when it ended on its own. */
export function farewell(state: ViewState): string | null {
  if (closedForIdleness(state)) return null; // nothing to explain: the person left it idle, and is leaving
  return state.connection.kind === 'closed' && state.banner ? `imgcache: ${state.banner.text}` : null;
}

/** Asks for a preview of the selected image when it has a saved copy that is not the one shown already. */
export function withPreview(state: ViewState, effects: Effect[] = []): Transition {
  const row = selectedRow(state);
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
  const selected = Math.max(0, Math.min(visibleImages(state).length - 1, index));
  return withPreview({ ...state, selected: Math.max(0, selected) });
}

/**
 * The session is over: say why, in words, and keep everything else on the screen. `idle`: the server closed it for
 * idleness, said calmly, and the next action that needs the server reconnects.
 */
export function endSession(state: ViewState, why: string, banner: string, rank: number, idle = false): ViewState {
  const explains = bannerWins(state, rank);
  const closed: ViewState = {
    ...state,
    connection:
      explains || state.connection.kind !== 'closed'
        ? { kind: 'closed', why, ...(idle ? { idle } : {}) }
        : state.connection,
    images: state.images.map((row) => (row.download ? { ...row, download: null } : row)),
    usage: { ...state.usage, loading: false },
    listing: false,
    confirm: null,
    // What needs the session closes: the command line and a pending question give the keys back.
    focus: state.focus === 'command' || state.focus === 'confirm' ? state.main : state.focus,
  };
  return withBanner(closed, idle ? 'info' : 'error', banner, rank);
}

/**
 * A get the server will answer by ending the session: no image request is left, and the copy held (if any) is not
 * known to be current, so the answer will not be a free not-modified [P-35] but the refusal quota-exhausted.
 */
export function endsTheSession(state: ViewState, name: string): boolean {
  const row = state.images.find((image) => image.name === name);
  return state.quota?.remaining === 0 && row?.local !== 'current';
}

/**
 * Enter on a row, or `get <image>` typed: ask for the download unless one is running or we are not connected. A get
 * that would end the session is asked about first (y or n), unless `confirmed`. With no request left, a row that says
 * its copy is current is believed only once the file was checked (`checked`): a copy deleted behind our back would
 * make the get a real one, which the server refuses by ending the session.
 */
export function requestDownload(
  state: ViewState,
  now: number,
  name: string,
  confirmed = false,
  checked = false,
): Transition {
  if (closedForIdleness(state)) return reconnect(state, now, { kind: 'get', image: name });
  if (!isConnected(state)) {
    return { state: addLog(state, now, 'warn', `cannot get ${name}: ${whyNotConnected(state)}`), effects: [] };
  }
  const row = state.images.find((image) => image.name === name);
  if (row?.download) return { state: addLog(state, now, 'info', `${name} is downloading already`), effects: [] };
  if (!confirmed && !checked && state.quota?.remaining === 0 && row?.local === 'current') {
    return { state, effects: [{ type: 'check-local', name, before: 'get' }] };
  }
  if (!confirmed && endsTheSession(state, name)) {
    const text = `y/n: get ${name}? 0 requests left: the server ends the session.`;
    return { state: { ...state, focus: 'confirm', confirm: { kind: 'get', image: name, text } }, effects: [] };
  }
  const started = updateRow(state, name, (image) => ({ ...image, download: { received: 0, total: image.bytes } }));
  return { state: addLog(started, now, 'info', `get ${name}`), effects: [{ type: 'download', name }] };
}

export function requestUsage(state: ViewState, now: number, typed: boolean): Transition {
  const identity = state.identity;
  if (!identity) return { state: addLog(state, now, 'warn', 'not connected yet'), effects: [] };
  if (!typed && !identity.canReadUsage) {
    const text = `usage is a platinum right: the ${identity.tier} tier may not read the usage history`;
    return { state: addLog(state, now, 'warn', text), effects: [] };
  }
  if (closedForIdleness(state)) return reconnect(state, now, { kind: 'usage', typed });
  if (!isConnected(state)) {
    const shown = state.usage.document ? { ...state, main: 'usage' as const, focus: 'usage' as const } : state;
    return { state: addLog(shown, now, 'warn', `cannot read usage: ${whyNotConnected(state)}`), effects: [] };
  }
  // A key opens the view at once (it fills in when the document arrives); a typed `usage` waits for the answer.
  const opened = typed ? state : { ...state, main: 'usage' as const, focus: 'usage' as const };
  return { state: { ...opened, usage: { ...opened.usage, loading: true } }, effects: [{ type: 'usage' }] };
}

/**
 * r once the session is over, or (after an idle close) any action that needs the server: a new session, the screen
 * kept; the banner goes, the log says what happened. `resume`: what to carry out once the new session is there.
 */
export function reconnect(state: ViewState, now: number, resume: Resume | null = null): Transition {
  const next: ViewState = {
    ...state,
    connection: { kind: 'connecting' },
    banner: null,
    confirm: null,
    listing: false,
    catalogStale: false,
    resume,
    focus: state.main,
  };
  return {
    state: addLog(next, now, 'info', `connecting to ${state.address} again…`),
    effects: [{ type: 'reconnect' }],
  };
}
