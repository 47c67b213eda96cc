/**
 * The dashboard's logic as one pure reducer: (view state, event, time) in, (new view state, effects) out. Events are
 * server messages, client-library results and key presses; effects are what the runner must do next (send a
 * request, save a file, decode a preview, quit). Nothing here touches a socket, a file or blessed. This file takes
 * what the server and the client library report; view-state-keys.ts takes what the person presses and types.
 */
import type { Quota, ReceivedNotice, ReceivedReject } from '../../src/protocol/index.ts';
import { formatBytes } from '../format.ts';
import { EMPTY_COMMAND_LINE } from './command-line.ts';
import { usageClientNames } from './usage-table.ts';
import type { DashboardEvent, Effect, Failure, ImageRow, Transition, ViewState } from './view-state.types.ts';
import { onKey, onMouse } from './view-state-keys.ts';
import {
  addLog,
  DASHBOARD_EXIT,
  endSession,
  idleDuration,
  isConnected,
  keepSelection,
  quit,
  quotaText,
  RANK,
  requestDownload,
  requestUsage,
  shortHash,
  signalStatus,
  sortImages,
  updateRow,
  withBanner,
  withPreview,
} from './view-state-steps.ts';

export { DASHBOARD_EXIT } from './view-state-steps.ts';

export function initialViewState(address: string, cacheFolder: string): ViewState {
  return {
    address,
    cacheFolder,
    connection: { kind: 'connecting' },
    server: null,
    identity: null,
    quota: null,
    images: [],
    imagesLoaded: false,
    selected: 0,
    focus: 'images',
    main: 'images',
    command: EMPTY_COMMAND_LINE,
    usage: { document: null, text: null, loading: false, filter: null, scroll: 0 },
    preview: null,
    log: [],
    logScroll: 0,
    search: '',
    sort: 'name',
    listing: false,
    catalogStale: false,
    answeredAt: null,
    resume: null,
    confirm: null,
    sessions: 0,
    banner: null,
    exit: null,
  };
}

/** The text printed after the screen is gone when the server turned us away [P-13]. */
export function rejectionMessage(address: string, reject: ReceivedReject): string {
  const lines = [`imgcache: the server at ${address} rejected the connection (${reject.reason})`];
  lines.push(`  ${reject.message}`);
  if (reject.occupancy) {
    lines.push(`  occupancy: ${reject.occupancy.open} of ${reject.occupancy.capacity} sessions open`);
  }
  if (reject.retryAfterMs !== undefined) {
    lines.push(`  retry: try again in ${(reject.retryAfterMs / 1000).toFixed(1)} s`);
  }
  if (reject.supported) lines.push(`  versions: the server speaks version ${reject.supported.join(', ')}`);
  return lines.join('\n');
}

function describeFailure(request: string, image: string | undefined, failure: Failure): string {
  const what = image ? `${request} ${image}` : request;
  if (failure.kind === 'refused') return `refused ${what}: ${failure.message} (${failure.code})`;
  return `${what} failed: ${failure.message}`;
}

/** The event of type `T`. */
type EventOf<T extends DashboardEvent['type']> = Extract<DashboardEvent, { type: T }>;

function onRequestFailed(state: ViewState, now: number, event: EventOf<'request-failed'>): ViewState {
  const { failure, image } = event;
  let next = image ? updateRow(state, image, (row) => ({ ...row, download: null })) : state;
  if (event.request === 'list') next = { ...next, listing: false };
  if (event.request === 'usage') {
    const showing = next.main === 'usage' && next.usage.document === null;
    next = {
      ...next,
      usage: { ...next.usage, loading: false },
      ...(showing ? { main: 'images' as const, focus: next.focus === 'usage' ? ('images' as const) : next.focus } : {}),
    };
  }
  next = addLog(next, now, 'error', describeFailure(event.request, image, failure));
  if (failure.kind === 'refused' && failure.code === 'quota-exhausted') {
    const limit = next.quota ? ` (all ${next.quota.limit})` : '';
    return endSession(
      next,
      'quota exhausted',
      `Quota exhausted: every image request of this session${limit} is used, so the server refused ${image ?? 'the request'} and closed the session.`,
      RANK.ended,
    );
  }
  if (failure.kind === 'refused' && failure.fatal) {
    return endSession(
      next,
      failure.code,
      `The server ended the session: ${failure.message} (${failure.code}).`,
      RANK.ended,
    );
  }
  if (failure.kind === 'closed' && next.connection.kind !== 'closed') {
    return endSession(next, 'connection lost', `The connection dropped: ${failure.message}.`, RANK.dropped);
  }
  return next;
}

/** What the folder holds for an image, checked: the row follows it, and a get waiting for the check goes on. */
function onLocalChecked(state: ViewState, now: number, event: EventOf<'local-checked'>): Transition {
  const { name, saved } = event;
  const before = state.images.find((row) => row.name === name);
  const local = (row: ImageRow): ImageRow['local'] =>
    saved === null ? 'absent' : saved.sha256 === row.sha256 ? 'current' : 'stale';
  const checked = updateRow(state, name, (row) => ({ ...row, saved, local: local(row) }));
  const gone = before?.saved && saved === null;
  const logged = gone ? addLog(checked, now, 'warn', `${name} is not in the cache folder any more`) : checked;
  const shown = withPreview(logged);
  if (event.before !== 'get') return shown;
  const asked = requestDownload(shown.state, now, name, false, true);
  return { state: asked.state, effects: [...shown.effects, ...asked.effects] };
}

/**
 * [P-70] The server says its catalog changed: list it again (quietly: the log says only what changed), or, while a
 * list is on its way, once it is back (it may have been answered before the change).
 */
function onCatalogChanged(state: ViewState): Transition {
  if (state.exit || !isConnected(state)) return { state, effects: [] };
  if (state.listing) return { state: { ...state, catalogStale: true }, effects: [] };
  return { state: { ...state, listing: true }, effects: [{ type: 'list', quiet: true }] };
}

function onNotice(state: ViewState, now: number, notice: ReceivedNotice): ViewState {
  if (notice.kind === 'idle-timeout' && notice.closing) {
    // [P-27] [P-44] Closed for idleness (or reclaimed for someone waiting): said calmly; nothing is lost, and the
    // next action that needs the server opens a new session.
    const after = state.answeredAt === null ? '' : ` after ${idleDuration(now - state.answeredAt)}`;
    const rest = `${after} without a request; press r or any command to reconnect`;
    const logged = addLog(state, now, 'info', `the server closed the session${rest}`);
    return endSession(logged, 'idle', `Closed${rest}.`, RANK.ended, true);
  }
  const logged = addLog(state, now, notice.closing ? 'error' : 'warn', `server: ${notice.message} (${notice.kind})`);
  if (!notice.closing) return logged;
  // [P-27] [P-28] a closing NOTICE is the last frame of the connection.
  if (notice.kind === 'shutting-down') {
    return endSession(
      logged,
      'the server shut down',
      'The server is shutting down, and has closed this session.',
      RANK.ended,
    );
  }
  return endSession(logged, notice.kind, `The server closed this session: ${notice.message}`, RANK.ended);
}

function onQuota(state: ViewState, now: number, quota: Quota): ViewState {
  const before = state.quota?.remaining;
  const next = { ...state, quota };
  if (quota.remaining > 0 || before === 0) return next;
  // Only what this session may still do: a tier without the usage right is not told that usage works.
  const still = state.identity?.canReadUsage ? 'list and usage still work' : 'list still works';
  const logged = addLog(
    next,
    now,
    'warn',
    `no image requests left (0 of ${quota.limit}): ${still}; the next get ends the session`,
  );
  return withBanner(
    logged,
    'warn',
    `Quota used up: 0 of ${quota.limit} image requests left; another get ends the session.`,
    RANK.warning,
  );
}

/** What a list asked after a catalog-changed NOTICE [P-70] found changed, in one line, or null when nothing did. */
export function catalogChange(
  before: readonly ImageRow[],
  after: ReadonlyArray<Omit<ImageRow, 'download'>>,
): string | null {
  const old = new Map(before.map((row) => [row.name, row.sha256]));
  const added = after.filter((row) => !old.has(row.name)).map((row) => row.name);
  const changed = after.filter((row) => old.has(row.name) && old.get(row.name) !== row.sha256).map((row) => row.name);
  const names = new Set(after.map((row) => row.name));
  const removed = before.filter((row) => !names.has(row.name)).map((row) => row.name);
  const parts = [
    added.length > 0 ? `new ${added.join(', ')}` : '',
    changed.length > 0 ? `changed ${changed.join(', ')}` : '',
    removed.length > 0 ? `gone ${removed.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? `the catalog changed: ${parts.join('; ')}` : null;
}

export function update(state: ViewState, event: DashboardEvent, now: number): Transition {
  switch (event.type) {
    case 'connected': {
      const { session, quota } = event;
      const connected: ViewState = {
        ...state,
        connection: { kind: 'connected' },
        server: event.server,
        identity: session,
        quota,
      };
      const text = `connected to ${state.address} as ${session.name} (code ${session.code}, ${session.tier}); ${quotaText(quota)}`;
      const counted: ViewState = {
        ...connected,
        sessions: state.sessions + 1,
        listing: true,
        catalogStale: false,
        answeredAt: now,
        resume: null,
      };
      const listed: Transition = { state: addLog(counted, now, 'good', text), effects: [{ type: 'list' }] };
      // What the person asked for when the new session was opened for it: carried out now, after the list.
      const resume = state.resume;
      if (!resume) return listed;
      const resumed =
        resume.kind === 'get'
          ? requestDownload(listed.state, now, resume.image)
          : requestUsage(listed.state, now, resume.typed);
      return { state: resumed.state, effects: [...listed.effects, ...resumed.effects] };
    }
    case 'rejected': {
      const message = rejectionMessage(state.address, event.reject);
      const rejected: ViewState = {
        ...state,
        connection: { kind: 'rejected', why: event.reject.message },
        banner: { tone: 'error', text: message, rank: RANK.ended },
      };
      return quit(addLog(rejected, now, 'error', message), DASHBOARD_EXIT.rejected, message);
    }
    case 'unreachable': {
      const message = `imgcache: cannot reach the server at ${state.address}: ${event.message}`;
      const closed: ViewState = { ...state, connection: { kind: 'closed', why: event.message } };
      return quit(addLog(closed, now, 'error', message), DASHBOARD_EXIT.unreachable, message);
    }
    case 'list-loaded': {
      const downloads = new Map(state.images.map((row) => [row.name, row.download]));
      const images = event.images.map((image) => ({ ...image, download: downloads.get(image.name) ?? null }));
      const listed = keepSelection(state, {
        ...state,
        images: sortImages(images, state.sort),
        imagesLoaded: true,
        identity: event.session,
        quota: event.quota,
        listing: false,
        catalogStale: false,
        answeredAt: now,
      });
      // [P-70] The catalog changed after this list was asked: once more, quietly.
      const again: Effect[] = state.catalogStale && isConnected(state) ? [{ type: 'list', quiet: true }] : [];
      const current = again.length > 0 ? { ...listed, listing: true } : listed;
      if (event.quiet) {
        const change = catalogChange(state.images, images);
        return withPreview(change ? addLog(current, now, 'info', change) : current, again);
      }
      const count = `${images.length} image${images.length === 1 ? '' : 's'} on the server`;
      return withPreview(addLog(current, now, 'info', `${count}; ${quotaText(event.quota)}`), again);
    }
    case 'download-progress':
      return {
        state: updateRow(state, event.name, (row) => ({
          ...row,
          download: { received: event.received, total: event.total },
        })),
        effects: [],
      };
    case 'download-finished': {
      const { saved, name } = event;
      // The header's quota is not taken from here: answers are pipelined and their files saved in any order, so a
      // save finishing late would put back an older quota. The client's 'quota' events keep it, in the wire's order.
      const finished = updateRow({ ...state, answeredAt: now }, name, (row) => ({
        ...row,
        sha256: saved.sha256,
        bytes: saved.bytes,
        local: 'current',
        saved,
        download: null,
      }));
      const text =
        event.outcome === 'downloaded'
          ? `saved ${name} (${formatBytes(saved.bytes)}, sha256 ${shortHash(saved.sha256)}) to ${saved.path}; ${quotaText(event.quota)}`
          : `${name} is current already in ${saved.path}; no request used`;
      return withPreview(addLog(finished, now, 'good', text));
    }
    case 'usage-loaded': {
      const { document } = event;
      const filter =
        state.usage.filter !== null && usageClientNames(document).includes(state.usage.filter)
          ? state.usage.filter
          : null;
      const requests = document.clients.reduce((sum, client) => sum + client.requests.length, 0);
      const loaded: ViewState = {
        ...state,
        main: 'usage',
        focus: state.focus === 'images' ? 'usage' : state.focus,
        usage: { document, text: event.text, loading: false, filter, scroll: 0 },
        answeredAt: now,
      };
      const text = `usage: ${document.clients.length} clients, ${requests} image requests, ${document.rejected.length} rejected connections`;
      return { state: addLog(loaded, now, 'info', text), effects: [] };
    }
    case 'usage-saved':
      return {
        state: addLog(
          state,
          now,
          'good',
          `usage of ${event.client === null ? 'every client' : `client ${event.client} only`} saved to ${event.path} (${formatBytes(event.bytes)})`,
        ),
        effects: [],
      };
    case 'preview-loaded': {
      const preview = state.preview;
      if (preview?.name !== event.name || preview.sha256 !== event.sha256) return { state, effects: [] };
      return { state: { ...state, preview: { ...preview, status: 'ready', image: event.image } }, effects: [] };
    }
    case 'preview-failed': {
      const preview = state.preview;
      if (preview?.name !== event.name || preview.sha256 !== event.sha256) return { state, effects: [] };
      const failed = { ...state, preview: { ...preview, status: 'failed' as const, error: event.message } };
      return { state: addLog(failed, now, 'warn', event.message), effects: [] };
    }
    case 'request-failed': {
      // A get that failed may have left the folder otherwise than the row says: it is checked.
      const check: Effect[] =
        event.request === 'get' && event.image ? [{ type: 'check-local', name: event.image }] : [];
      return { state: onRequestFailed(state, now, event), effects: check };
    }
    case 'local-checked':
      return onLocalChecked(state, now, event);
    case 'quota':
      // Every answer carries the quota [P-17]: the server answered now.
      return { state: onQuota({ ...state, answeredAt: now }, now, event.quota), effects: [] };
    case 'notice':
      if (event.notice.kind === 'catalog-changed') return onCatalogChanged(state);
      return { state: onNotice(state, now, event.notice), effects: [] };
    case 'connection-closed': {
      if (state.exit || state.connection.kind !== 'connected') return { state, effects: [] };
      const logged = addLog(state, now, 'error', `connection closed: ${event.message}`);
      return {
        state: endSession(logged, 'connection lost', `The connection dropped: ${event.message}.`, RANK.dropped),
        effects: [],
      };
    }
    case 'reconnect-failed': {
      const failed = addLog(state, now, 'error', `reconnect failed: ${event.message}`);
      const closed: ViewState = { ...failed, connection: { kind: 'closed', why: 'reconnect failed' }, resume: null };
      return {
        state: withBanner(closed, 'error', `No new session: ${event.message}.`, RANK.ended),
        effects: [],
      };
    }
    case 'signal':
      if (state.exit) return { state, effects: [] };
      return quit(addLog(state, now, 'warn', `ended by ${event.signal}`), signalStatus(event.signal), null);
    case 'mouse':
      return onMouse(state, now, event.mouse);
    case 'key':
      return onKey(state, now, event.key);
  }
}
