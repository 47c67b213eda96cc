/**
 * The dashboard's view state, the events that change it and the effects it asks for. Types only: the reducer lives
 * in view-state.ts, the blessed glue in dashboard.ts. Everything here is plain data, so a test can build any state
 * and feed any event without a terminal or a server.
 */
import type { Quota, ReceivedNotice, ReceivedReject, SessionIdentity } from '../../src/protocol/index.ts';
import type { LocalState } from '../local-cache.ts';
import type { DecodedImage } from './png-decoder.ts';
import type { UsageDocument } from './usage-table.ts';

/** What the cache folder holds for an image (from the local cache's manifest). */
export interface SavedImage {
  path: string;
  sha256: string;
  bytes: number;
  fetchedAt: string;
}

/** One row of the image table: the server's description plus what we hold locally. */
export interface ImageRow {
  name: string;
  bytes: number;
  modified: string;
  sha256: string;
  local: LocalState;
  saved: SavedImage | null;
  /** set while a download runs */
  download: { received: number; total: number } | null;
}

export type ConnectionState =
  | { kind: 'connecting' }
  | { kind: 'connected' }
  /**
   * the session is over; `why` says so in words. `idle`: the server closed it for idleness ([P-27], or reclaimed it,
   * [P-44]): nothing went wrong, and the next action that needs the server opens a new session by itself
   */
  | { kind: 'closed'; why: string; idle?: boolean }
  | { kind: 'rejected'; why: string };

/**
 * Which part of the screen has the keys: the image list, the command line, the usage view, the help, the search
 * line (`/`), a yes/no question, or the log (scrolled with the keys).
 */
export type Focus = 'images' | 'command' | 'usage' | 'help' | 'search' | 'confirm' | 'log';

/** How the image list is ordered. */
export type SortKey = 'name' | 'size' | 'date';

/** A question the person answers with y or n before the dashboard does something that cannot be undone. */
export interface Confirmation {
  /** what a yes does: get this image although the server will then end the session */
  kind: 'get';
  image: string;
  text: string;
}

/**
 * What to do once the new session a key press opened is there: the get or the usage that needed it (the list is
 * read by every new session anyway).
 */
export type Resume = { kind: 'get'; image: string } | { kind: 'usage'; typed: boolean };

/** What the main area shows. */
export type MainView = 'images' | 'usage';

export interface CommandLine {
  text: string;
  /** entered lines, oldest first */
  history: string[];
  /** index into `history` while browsing it with up/down, null otherwise */
  browsing: number | null;
  /** what was typed before browsing started, restored by going past the newest entry */
  draft: string;
}

export interface UsageView {
  document: UsageDocument | null;
  /** the document as the server sent it: what `s` saves */
  text: string | null;
  loading: boolean;
  /** show only this client's rows; null shows every client */
  filter: string | null;
  /** first row shown */
  scroll: number;
}

export type Tone = 'info' | 'good' | 'warn' | 'error';

export interface LogEntry {
  /** ms since the epoch */
  at: number;
  tone: Tone;
  text: string;
}

export interface Preview {
  name: string;
  sha256: string;
  status: 'loading' | 'ready' | 'failed';
  image: DecodedImage | null;
  error: string | null;
}

export interface ViewState {
  /** host:port of the server */
  address: string;
  cacheFolder: string;
  connection: ConnectionState;
  server: string | null;
  identity: SessionIdentity | null;
  quota: Quota | null;
  images: ImageRow[];
  imagesLoaded: boolean;
  selected: number;
  focus: Focus;
  /** where focus goes back to when the command line or the help closes */
  main: MainView;
  command: CommandLine;
  usage: UsageView;
  preview: Preview | null;
  log: LogEntry[];
  /** how many of the newest log lines are scrolled out of view below (0: the newest is shown) */
  logScroll: number;
  /** the images shown are those whose name contains this text (any case); '' shows every image */
  search: string;
  sort: SortKey;
  /** a `list` is on its way: a catalog-changed NOTICE [P-70] does not ask another, it marks the list stale */
  listing: boolean;
  /** [P-70] the catalog changed after the list on its way was asked: list again when it arrives */
  catalogStale: boolean;
  /** [P-27] when the server last answered (ms since the epoch): how long the session had been idle when closed */
  answeredAt: number | null;
  /** what the person asked for that opened the new session on its way, carried out once it is there */
  resume: Resume | null;
  confirm: Confirmation | null;
  /** how many sessions this dashboard has opened (a reconnect opens another) */
  sessions: number;
  /**
   * One short sentence about the state of the session (quota used up, session over), shown until the person quits.
   * `rank` says how much it explains: 0 a warning, 1 a dropped connection, 2 a session ended for a stated reason.
   */
  banner: { tone: Tone; text: string; rank: number } | null;
  /** set once the program should end: its exit status and what to print after the screen is gone */
  exit: { status: number; message: string | null } | null;
}

/** A key press as blessed reports it: `full` is e.g. 'up', 'enter', 'C-c', 'S-tab', 'j', ':'. */
export interface KeyPress {
  full: string;
  /** the character typed, when the key types one */
  ch?: string | undefined;
}

/** Why a request did not succeed, reduced to plain data by the effect runner. */
export type Failure =
  /** the server answered with an ERROR [P-26] */
  | { kind: 'refused'; code: string; message: string; fatal: boolean }
  /** the connection is gone */
  | { kind: 'closed'; message: string }
  /** anything else: a corrupt transfer, a disk error */
  | { kind: 'failed'; message: string };

export type RequestName = 'list' | 'get' | 'usage' | 'save-usage';

/** Everything that can happen to the dashboard: server messages, client-library results, key presses. */
export type DashboardEvent =
  | { type: 'connected'; server: string; session: SessionIdentity; quota: Quota }
  | { type: 'rejected'; reject: ReceivedReject }
  | { type: 'unreachable'; message: string }
  | {
      type: 'list-loaded';
      images: Array<Omit<ImageRow, 'download'>>;
      session: SessionIdentity;
      quota: Quota;
      /** asked because the server said the catalog changed [P-70], not by the person: only changes are logged */
      quiet?: boolean;
    }
  | { type: 'download-progress'; name: string; received: number; total: number }
  | {
      type: 'download-finished';
      name: string;
      outcome: 'downloaded' | 'not-modified';
      saved: SavedImage;
      quota: Quota;
    }
  | { type: 'usage-loaded'; text: string; document: UsageDocument }
  | { type: 'usage-saved'; path: string; bytes: number; client: string | null }
  | { type: 'preview-loaded'; name: string; sha256: string; image: DecodedImage }
  /** `message`: why, as a sentence that names the image */
  | { type: 'preview-failed'; name: string; sha256: string; message: string }
  | { type: 'request-failed'; request: RequestName; image?: string | undefined; failure: Failure }
  /**
   * What the cache folder holds for `name` now (null: no copy, or no longer the copy recorded). `before: 'get'`: the
   * check was asked before a get, which goes on once the row says what is really held.
   */
  | { type: 'local-checked'; name: string; saved: SavedImage | null; before?: 'get' }
  | { type: 'quota'; quota: Quota }
  | { type: 'notice'; notice: ReceivedNotice }
  | { type: 'connection-closed'; message: string }
  /** a reconnect found no new session (the server is away, or turned us away): the screen stays as it was */
  | { type: 'reconnect-failed'; message: string }
  /** the process was asked to end (SIGTERM, SIGHUP): quit at once */
  | { type: 'signal'; signal: string }
  | { type: 'mouse'; mouse: MouseAction }
  | { type: 'key'; key: KeyPress };

/** A mouse action, already placed by the glue on what it touched (layout.ts knows where everything is). */
export type MouseAction =
  /** a click on the image table's row `index` of the images shown */
  | { kind: 'click-row'; index: number }
  /** a click on the key bar, on the key whose blessed name is `key` */
  | { kind: 'click-key'; key: string }
  /** the wheel over a panel: `lines` positive scrolls down */
  | { kind: 'wheel'; panel: 'images' | 'log' | 'usage'; lines: number };

/** What the reducer asks the outside world to do; the effect runner does it and reports back with events. */
export type Effect =
  | { type: 'list'; quiet?: boolean }
  /** close what is left of the session and open a new one */
  | { type: 'reconnect' }
  | { type: 'download'; name: string }
  | { type: 'usage' }
  /** `client`: the one client shown, when the view is filtered (then only its part is saved) */
  | { type: 'save-usage'; text: string; client: string | null }
  | { type: 'load-preview'; name: string; path: string; sha256: string }
  /** check the file held for `name` against the folder; reported by a `local-checked` event */
  | { type: 'check-local'; name: string; before?: 'get' }
  /** end the program: say goodbye to the server if still connected, restore the terminal, print `message` */
  | { type: 'quit'; status: number; message: string | null };

export interface Transition {
  state: ViewState;
  effects: Effect[];
}
