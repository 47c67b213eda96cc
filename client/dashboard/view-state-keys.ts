/**
 * The reducer's half for the person: key presses, looked up in the table of bindings for the part of the screen that
 * has the focus, and the commands typed on the command line.
 */
import {
  clearLine,
  complete,
  deleteBack,
  historyBack,
  historyForward,
  parseCommand,
  remember,
  TYPED_COMMANDS,
  typeText,
} from './command-line.ts';
import { type Action, actionFor } from './key-bindings.ts';
import { nextUsageFilter, usageClientNames, usageRows } from './usage-table.ts';
import type { Effect, KeyPress, MouseAction, SortKey, Transition, ViewState } from './view-state.types.ts';
import {
  addLog,
  closedForIdleness,
  farewell,
  isConnected,
  keepSelection,
  quit,
  quitStatus,
  reconnect,
  requestDownload,
  requestUsage,
  select,
  selectedRow,
  sortImages,
  whyNotConnected,
  withPreview,
} from './view-state-steps.ts';

/** rows PgUp and PgDn move */
const PAGE_ROWS = 10;

const SORTS: readonly SortKey[] = ['name', 'size', 'date'];

/** s in the usage view: saves what is shown, every client or the one the view is filtered to, and says which. */
function saveUsage(state: ViewState, now: number): Transition {
  if (state.usage.text === null)
    return { state: addLog(state, now, 'warn', 'no usage document to save yet'), effects: [] };
  const client = state.usage.filter;
  const what = client === null ? 'every client' : `client ${client} only`;
  return {
    state: addLog(state, now, 'info', `saving the usage of ${what}…`),
    effects: [{ type: 'save-usage', text: state.usage.text, client }],
  };
}

function endQuit(state: ViewState): Transition {
  return quit(state, quitStatus(state), farewell(state));
}

function setFilter(state: ViewState, filter: string | null): ViewState {
  return { ...state, usage: { ...state.usage, filter, scroll: 0 } };
}

function mainFocus(state: ViewState): ViewState {
  return { ...state, focus: state.main };
}

function runCommand(state: ViewState, now: number): Transition {
  const text = state.command.text;
  const command = parseCommand(text);
  const entered = mainFocus({ ...state, command: remember(state.command, text) });
  const echoed = command.kind === 'empty' ? entered : addLog(entered, now, 'info', `> ${text.trim()}`);
  switch (command.kind) {
    case 'empty':
      return { state: echoed, effects: [] };
    case 'invalid':
      return { state: addLog(echoed, now, 'error', command.message), effects: [] };
    case 'list':
      if (closedForIdleness(echoed)) return reconnect(echoed, now); // a new session lists first thing
      if (!isConnected(echoed)) return { state: addLog(echoed, now, 'warn', whyNotConnected(echoed)), effects: [] };
      return { state: echoed, effects: [{ type: 'list' }] };
    case 'get': {
      let current = echoed;
      const effects: Effect[] = [];
      for (const image of command.images) {
        const step = requestDownload(current, now, image);
        current = step.state;
        effects.push(...step.effects);
      }
      return { state: current, effects };
    }
    case 'usage':
      return requestUsage(echoed, now, true);
    case 'exit':
      return endQuit(echoed);
    case 'help':
      return {
        state: addLog({ ...echoed, focus: 'help' }, now, 'info', `commands: ${TYPED_COMMANDS.join(', ')}`),
        effects: [],
      };
    case 'filter': {
      const document = echoed.usage.document;
      if (!document) return { state: addLog(echoed, now, 'warn', 'read the usage first (u)'), effects: [] };
      if (command.client !== null && !usageClientNames(document).includes(command.client)) {
        return { state: addLog(echoed, now, 'warn', `no client named ${command.client} in the usage`), effects: [] };
      }
      return { state: { ...setFilter(echoed, command.client), main: 'usage', focus: 'usage' }, effects: [] };
    }
  }
}

function isTypable(key: KeyPress): key is KeyPress & { ch: string } {
  return (
    typeof key.ch === 'string' &&
    key.ch.length === 1 &&
    key.ch >= ' ' &&
    key.ch !== '\x7f' &&
    !key.full.startsWith('C-') &&
    !key.full.startsWith('M-')
  );
}

function onCommandKey(state: ViewState, now: number, key: KeyPress, action: Action | undefined): Transition {
  const line = state.command;
  switch (action) {
    case 'run':
      return runCommand(state, now);
    case 'complete': {
      const clients = state.usage.document ? usageClientNames(state.usage.document) : [];
      const names = state.images.map((row) => row.name);
      const completion = complete(line.text, names, clients);
      const next = { ...state, command: { ...line, text: completion.text, browsing: null } };
      const logged =
        completion.candidates.length > 0
          ? addLog(next, now, 'info', `matches: ${completion.candidates.join(', ')}`)
          : next;
      return { state: logged, effects: [] };
    }
    case 'history-back':
      return { state: { ...state, command: historyBack(line) }, effects: [] };
    case 'history-forward':
      return { state: { ...state, command: historyForward(line) }, effects: [] };
    case 'delete-back':
      return { state: { ...state, command: deleteBack(line) }, effects: [] };
    case 'clear-line':
      return { state: { ...state, command: clearLine(line) }, effects: [] };
    case 'cancel':
      return { state: mainFocus({ ...state, command: clearLine(line) }), effects: [] };
    case 'quit':
      return endQuit(state);
    default:
      if (!isTypable(key)) return { state, effects: [] };
      return { state: { ...state, command: typeText(line, key.ch) }, effects: [] };
  }
}

/** `/`: the search line. The table follows every key typed; Enter keeps the search, Esc clears it. */
function onSearchKey(state: ViewState, key: KeyPress, action: Action | undefined): Transition {
  const searched = (search: string, focus: ViewState['focus'] = 'search') =>
    withPreview(keepSelection(state, { ...state, search, focus }));
  switch (action) {
    case 'run':
      return { state: { ...state, focus: 'images' }, effects: [] };
    case 'cancel':
      return searched('', 'images');
    case 'delete-back':
      return searched(state.search.slice(0, -1));
    case 'clear-line':
      return searched('');
    case 'quit':
      return endQuit(state);
    default:
      if (!isTypable(key)) return { state, effects: [] };
      return searched(state.search + key.ch);
  }
}

function onConfirmKey(state: ViewState, now: number, action: Action | undefined): Transition {
  const question = state.confirm;
  const answered: ViewState = { ...state, confirm: null, focus: state.main };
  switch (action) {
    case 'yes':
      return question ? requestDownload(answered, now, question.image, true) : { state: answered, effects: [] };
    case 'no':
      return { state: addLog(answered, now, 'info', `not getting ${question?.image ?? 'it'}`), effects: [] };
    case 'quit':
      return endQuit(state);
    default:
      return { state, effects: [] };
  }
}

/** The log, scrolled back `logScroll` entries from the newest. */
function scrollLog(state: ViewState, to: number): ViewState {
  return { ...state, logScroll: Math.max(0, Math.min(Math.max(0, state.log.length - 1), to)) };
}

function onLogKey(state: ViewState, action: Action | undefined): Transition {
  switch (action) {
    case 'move-up':
      return { state: scrollLog(state, state.logScroll + 1), effects: [] };
    case 'move-down':
      return { state: scrollLog(state, state.logScroll - 1), effects: [] };
    case 'page-up':
      return { state: scrollLog(state, state.logScroll + PAGE_ROWS), effects: [] };
    case 'page-down':
      return { state: scrollLog(state, state.logScroll - PAGE_ROWS), effects: [] };
    case 'first':
      return { state: scrollLog(state, Number.MAX_SAFE_INTEGER), effects: [] };
    case 'last':
      return { state: scrollLog(state, 0), effects: [] };
    case 'back':
      // Leaving the scroll: the log follows the newest entries again.
      return { state: { ...state, focus: state.main, logScroll: 0 }, effects: [] };
    default:
      return onCommonKey(action === 'command' || action === 'help' ? { ...state, logScroll: 0 } : state, action);
  }
}

function onImagesKey(state: ViewState, now: number, action: Action | undefined): Transition {
  switch (action) {
    case 'move-up':
      return select(state, state.selected - 1);
    case 'move-down':
      return select(state, state.selected + 1);
    case 'first':
      return select(state, 0);
    case 'last':
      return select(state, Number.MAX_SAFE_INTEGER);
    case 'page-up':
      return select(state, state.selected - PAGE_ROWS);
    case 'page-down':
      return select(state, state.selected + PAGE_ROWS);
    case 'download': {
      const row = selectedRow(state);
      if (!row) return { state: addLog(state, now, 'warn', 'no image selected'), effects: [] };
      return requestDownload(state, now, row.name);
    }
    case 'refresh':
      if (state.connection.kind === 'closed') return reconnect(state, now);
      if (!isConnected(state)) return { state: addLog(state, now, 'warn', whyNotConnected(state)), effects: [] };
      return { state: { ...state, listing: true }, effects: [{ type: 'list' }] };
    case 'usage':
      return requestUsage(state, now, false);
    case 'search':
      return { state: { ...state, focus: 'search' }, effects: [] };
    case 'sort': {
      const sort = SORTS[(SORTS.indexOf(state.sort) + 1) % SORTS.length] ?? 'name';
      return withPreview(keepSelection(state, { ...state, sort, images: sortImages(state.images, sort) }));
    }
    case 'back':
      // Esc is back: it clears a search; in the plain list it does nothing (q quits).
      if (state.search === '') return { state, effects: [] };
      return withPreview(keepSelection(state, { ...state, search: '' }));
    case 'command':
      // After an idle close the command line opens: a command that needs the server opens a new session.
      if (!isConnected(state) && !closedForIdleness(state)) {
        return { state: addLog(state, now, 'warn', `no commands: ${whyNotConnected(state)}`), effects: [] };
      }
      return onCommonKey(state, action);
    default:
      return onCommonKey(state, action);
  }
}

/** The usage view's cursor: the row it is on, kept in view by the panel. */
function scrollUsage(state: ViewState, to: number): ViewState {
  const rows = state.usage.document ? usageRows(state.usage.document, state.usage.filter).length : 0;
  const scroll = Math.max(0, Math.min(Math.max(0, rows - 1), to));
  return { ...state, usage: { ...state.usage, scroll } };
}

function onUsageKey(state: ViewState, now: number, action: Action | undefined): Transition {
  const usage = state.usage;
  switch (action) {
    case 'move-up':
      return { state: scrollUsage(state, usage.scroll - 1), effects: [] };
    case 'move-down':
      return { state: scrollUsage(state, usage.scroll + 1), effects: [] };
    case 'first':
      return { state: scrollUsage(state, 0), effects: [] };
    case 'last':
      return { state: scrollUsage(state, Number.MAX_SAFE_INTEGER), effects: [] };
    case 'page-up':
      return { state: scrollUsage(state, usage.scroll - PAGE_ROWS), effects: [] };
    case 'page-down':
      return { state: scrollUsage(state, usage.scroll + PAGE_ROWS), effects: [] };
    case 'next-filter':
      if (!usage.document) return { state, effects: [] };
      return { state: setFilter(state, nextUsageFilter(usage.document, usage.filter)), effects: [] };
    case 'all-clients':
      return { state: setFilter(state, null), effects: [] };
    case 'save-usage':
      return saveUsage(state, now);
    case 'refresh':
      return requestUsage(state, now, false);
    case 'back':
      return { state: { ...state, main: 'images', focus: 'images' }, effects: [] };
    default:
      return onCommonKey(state, action);
  }
}

function onCommonKey(state: ViewState, action: Action | undefined): Transition {
  switch (action) {
    case 'command':
      return { state: { ...state, focus: 'command' }, effects: [] };
    case 'help':
      return { state: { ...state, focus: 'help' }, effects: [] };
    case 'log':
      return { state: { ...state, focus: 'log' }, effects: [] };
    case 'quit':
      return endQuit(state);
    default:
      return { state, effects: [] };
  }
}

export function onKey(state: ViewState, now: number, key: KeyPress): Transition {
  // blessed reports Enter twice, as 'enter' and then as 'return': only the first is a key press.
  if (state.exit || key.full === 'return' || key.full === 'linefeed') return { state, effects: [] };
  const action = actionFor(state.focus, key.full);
  switch (state.focus) {
    case 'help':
      return action === 'quit' ? endQuit(state) : { state: { ...state, focus: state.main }, effects: [] };
    case 'command':
      return onCommandKey(state, now, key, action);
    case 'search':
      return onSearchKey(state, key, action);
    case 'confirm':
      return onConfirmKey(state, now, action);
    case 'log':
      return onLogKey(state, action);
    case 'usage':
      return onUsageKey(state, now, action);
    case 'images':
      return onImagesKey(state, now, action);
  }
}

/** Mouse actions, placed by the glue: a click selects a row or presses a key of the bar; the wheel scrolls. */
export function onMouse(state: ViewState, now: number, mouse: MouseAction): Transition {
  if (state.exit) return { state, effects: [] };
  switch (mouse.kind) {
    case 'click-row':
      if (state.focus === 'help' || state.focus === 'confirm') return { state, effects: [] };
      return select({ ...state, focus: state.main === 'images' ? 'images' : state.focus }, mouse.index);
    case 'click-key':
      return onKey(state, now, { full: mouse.key });
    case 'wheel':
      if (mouse.panel === 'log') {
        // Scrolled back from the image list or the usage view, the log has the keys (Esc leaves, G the newest).
        const scrolled = scrollLog(state, state.logScroll - mouse.lines);
        const focus = scrolled.logScroll > 0 && state.focus === state.main ? 'log' : state.focus;
        return { state: { ...scrolled, focus }, effects: [] };
      }
      if (mouse.panel === 'usage') return { state: scrollUsage(state, state.usage.scroll + mouse.lines), effects: [] };
      return select(state, state.selected + mouse.lines);
  }
}
