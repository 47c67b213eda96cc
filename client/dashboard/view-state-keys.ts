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
import type { Effect, KeyPress, Transition, ViewState } from './view-state.types.ts';
import {
  addLog,
  DASHBOARD_EXIT,
  farewell,
  isConnected,
  quit,
  requestDownload,
  requestUsage,
  select,
  whyNotConnected,
} from './view-state-steps.ts';

/** rows PgUp and PgDn move */
const PAGE_ROWS = 10;

function saveUsage(state: ViewState, now: number): Transition {
  if (state.usage.text === null)
    return { state: addLog(state, now, 'warn', 'no usage document to save yet'), effects: [] };
  return { state, effects: [{ type: 'save-usage', text: state.usage.text }] };
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
      return quit(echoed, DASHBOARD_EXIT.ok, farewell(echoed));
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
      return quit(state, DASHBOARD_EXIT.ok, farewell(state));
    default:
      if (!isTypable(key)) return { state, effects: [] };
      return { state: { ...state, command: typeText(line, key.ch) }, effects: [] };
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
      return select(state, state.images.length - 1);
    case 'page-up':
      return select(state, state.selected - PAGE_ROWS);
    case 'page-down':
      return select(state, state.selected + PAGE_ROWS);
    case 'download': {
      const row = state.images[state.selected];
      if (!row) return { state: addLog(state, now, 'warn', 'no image selected'), effects: [] };
      return requestDownload(state, now, row.name);
    }
    case 'refresh':
      if (!isConnected(state)) return { state: addLog(state, now, 'warn', whyNotConnected(state)), effects: [] };
      return { state, effects: [{ type: 'list' }] };
    case 'usage':
      return requestUsage(state, now, false);
    default:
      return onCommonKey(state, action);
  }
}

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
    case 'quit':
      return quit(state, DASHBOARD_EXIT.ok, farewell(state));
    default:
      return { state, effects: [] };
  }
}

export function onKey(state: ViewState, now: number, key: KeyPress): Transition {
  if (state.exit) return { state, effects: [] };
  const action = actionFor(state.focus, key.full);
  switch (state.focus) {
    case 'help':
      return action === 'quit'
        ? quit(state, DASHBOARD_EXIT.ok, farewell(state))
        : { state: mainFocus(state), effects: [] };
    case 'command':
      return onCommandKey(state, now, key, action);
    case 'usage':
      return onUsageKey(state, now, action);
    case 'images':
      return onImagesKey(state, now, action);
  }
}
