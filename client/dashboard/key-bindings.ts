/**
 * Which key does what, in one table per focus: the reducer looks actions up here, and the key bar and the help
 * screen print the same table, so what is shown is what works. Esc means back or cancel everywhere, never quit: q
 * quits (at once, as in htop and lazygit), and so does Ctrl-C.
 */
import type { Focus, ViewState } from './view-state.types.ts';
import { closedForIdleness } from './view-state-steps.ts';

export type Action =
  | 'move-up'
  | 'move-down'
  | 'first'
  | 'last'
  | 'page-up'
  | 'page-down'
  | 'download'
  | 'command'
  | 'usage'
  | 'refresh'
  | 'help'
  | 'quit'
  | 'search'
  | 'sort'
  | 'log'
  | 'next-filter'
  | 'all-clients'
  | 'save-usage'
  | 'back'
  | 'run'
  | 'complete'
  | 'history-back'
  | 'history-forward'
  | 'delete-back'
  | 'clear-line'
  | 'cancel'
  | 'yes'
  | 'no';

export interface Binding {
  /** blessed key names ('up', 'C-c', 'S-g' for G) */
  keys: readonly string[];
  /** how the help screen names the keys */
  label: string;
  action: Action;
  description: string;
}

export interface BarItem {
  label: string;
  description: string;
  /** the blessed key a click on this item presses */
  key: string;
  /** left out first when the bar does not fit the terminal (the help lists it anyway) */
  optional?: boolean;
}

const QUIT: Binding = { keys: ['q', 'C-c'], label: 'q ^C', action: 'quit', description: 'quit' };
const HELP: Binding = { keys: ['?'], label: '?', action: 'help', description: 'this help' };
const COMMAND: Binding = { keys: [':'], label: ':', action: 'command', description: 'type a command' };
const CTRL_C: Binding = { keys: ['C-c'], label: '^C', action: 'quit', description: 'quit' };

export const BINDINGS: Record<Focus, readonly Binding[]> = {
  images: [
    { keys: ['up', 'k'], label: '↑ k', action: 'move-up', description: 'previous image' },
    { keys: ['down', 'j'], label: '↓ j', action: 'move-down', description: 'next image' },
    { keys: ['home', 'g'], label: 'Home g', action: 'first', description: 'first image' },
    { keys: ['end', 'S-g'], label: 'End G', action: 'last', description: 'last image' },
    { keys: ['pageup'], label: 'PgUp', action: 'page-up', description: 'page up' },
    { keys: ['pagedown'], label: 'PgDn', action: 'page-down', description: 'page down' },
    { keys: ['enter'], label: 'Enter', action: 'download', description: 'download the selected image' },
    { keys: ['/'], label: '/', action: 'search', description: 'search the names' },
    { keys: ['s'], label: 's', action: 'sort', description: 'sort by name, size, date' },
    { keys: ['r'], label: 'r', action: 'refresh', description: 'list again; reconnect once over' },
    { keys: ['u'], label: 'u', action: 'usage', description: 'usage history (platinum)' },
    { keys: ['l'], label: 'l', action: 'log', description: 'scroll the log' },
    { keys: ['escape'], label: 'Esc', action: 'back', description: 'clear the search' },
    COMMAND,
    HELP,
    QUIT,
  ],
  usage: [
    { keys: ['up', 'k'], label: '↑ k', action: 'move-up', description: 'previous row' },
    { keys: ['down', 'j'], label: '↓ j', action: 'move-down', description: 'next row' },
    { keys: ['home', 'g'], label: 'Home g', action: 'first', description: 'first row' },
    { keys: ['end', 'S-g'], label: 'End G', action: 'last', description: 'last row' },
    { keys: ['pageup'], label: 'PgUp', action: 'page-up', description: 'page up' },
    { keys: ['pagedown'], label: 'PgDn', action: 'page-down', description: 'page down' },
    { keys: ['f'], label: 'f', action: 'next-filter', description: 'show the next client only' },
    { keys: ['a'], label: 'a', action: 'all-clients', description: 'show every client' },
    { keys: ['s'], label: 's', action: 'save-usage', description: 'save what is shown as JSON' },
    { keys: ['r'], label: 'r', action: 'refresh', description: 'read the usage again' },
    { keys: ['u', 'escape'], label: 'u Esc', action: 'back', description: 'back to the images' },
    COMMAND,
    HELP,
    QUIT,
  ],
  command: [
    { keys: ['enter'], label: 'Enter', action: 'run', description: 'run the command' },
    { keys: ['tab'], label: 'Tab', action: 'complete', description: 'complete a name' },
    { keys: ['up'], label: '↑', action: 'history-back', description: 'previous command' },
    { keys: ['down'], label: '↓', action: 'history-forward', description: 'next command' },
    { keys: ['backspace'], label: 'Backspace', action: 'delete-back', description: 'delete a character' },
    { keys: ['C-u'], label: '^U', action: 'clear-line', description: 'clear the line' },
    { keys: ['escape'], label: 'Esc', action: 'cancel', description: 'leave the command line' },
    CTRL_C,
  ],
  search: [
    { keys: ['enter'], label: 'Enter', action: 'run', description: 'keep the search' },
    { keys: ['backspace'], label: 'Backspace', action: 'delete-back', description: 'delete a character' },
    { keys: ['C-u'], label: '^U', action: 'clear-line', description: 'clear the search' },
    { keys: ['escape'], label: 'Esc', action: 'cancel', description: 'clear the search and leave' },
    CTRL_C,
  ],
  confirm: [
    { keys: ['y', 'S-y'], label: 'y', action: 'yes', description: 'yes, do it' },
    { keys: ['n', 'S-n', 'escape'], label: 'n Esc', action: 'no', description: 'no' },
    CTRL_C,
  ],
  log: [
    { keys: ['up', 'k'], label: '↑ k', action: 'move-up', description: 'older' },
    { keys: ['down', 'j'], label: '↓ j', action: 'move-down', description: 'newer' },
    { keys: ['home', 'g'], label: 'Home g', action: 'first', description: 'oldest' },
    { keys: ['end', 'S-g'], label: 'End G', action: 'last', description: 'newest' },
    { keys: ['pageup'], label: 'PgUp', action: 'page-up', description: 'page up' },
    { keys: ['pagedown'], label: 'PgDn', action: 'page-down', description: 'page down' },
    { keys: ['l', 'escape'], label: 'l Esc', action: 'back', description: 'back' },
    HELP,
    QUIT,
  ],
  help: [CTRL_C],
};

/**
 * The bottom bar: the keys a person needs most for this focus, and only those that work in this state: once the
 * session is over, no get, command line or usage, and r reconnects; once the server closed it for idleness, they
 * all work (each opens a new session first).
 */
export function keyBarItems(view: ViewState): BarItem[] {
  const open = view.connection.kind === 'connected' || closedForIdleness(view);
  const over = view.connection.kind === 'closed';
  switch (view.focus) {
    case 'images':
      return [
        { label: '?', description: 'help', key: '?' },
        { label: '↑↓', description: 'move', key: 'down', optional: true },
        ...(open ? [{ label: 'Enter', description: 'get', key: 'enter' }] : []),
        { label: '/', description: 'search', key: '/' },
        { label: 's', description: 'sort', key: 's', optional: true },
        ...(open ? [{ label: ':', description: 'command', key: ':' }] : []),
        ...(open && view.identity?.canReadUsage ? [{ label: 'u', description: 'usage', key: 'u' }] : []),
        ...(open && !over ? [{ label: 'r', description: 'refresh', key: 'r' }] : []),
        ...(over ? [{ label: 'r', description: 'reconnect', key: 'r' }] : []),
        { label: 'l', description: 'log', key: 'l', optional: true },
        ...(view.search ? [{ label: 'Esc', description: 'clear search', key: 'escape' }] : []),
        { label: 'q', description: 'quit', key: 'q' },
      ];
    case 'usage':
      return [
        { label: '↑↓', description: 'move', key: 'down' },
        { label: 'f', description: 'next client', key: 'f' },
        { label: 'a', description: 'all', key: 'a' },
        { label: 's', description: view.usage.filter === null ? 'save all' : 'save shown', key: 's' },
        { label: 'Esc', description: 'images', key: 'escape' },
        { label: '?', description: 'help', key: '?' },
        { label: 'q', description: 'quit', key: 'q' },
      ];
    case 'command':
      return [
        { label: 'Enter', description: 'run', key: 'enter' },
        { label: 'Tab', description: 'complete', key: 'tab' },
        { label: '↑↓', description: 'history', key: 'up' },
        { label: 'Esc', description: 'cancel', key: 'escape' },
        { label: '^C', description: 'quit', key: 'C-c' },
      ];
    case 'search':
      return [
        { label: 'Enter', description: 'keep', key: 'enter' },
        { label: 'Esc', description: 'clear', key: 'escape' },
        { label: '^C', description: 'quit', key: 'C-c' },
      ];
    case 'confirm':
      return [
        { label: 'y', description: 'yes', key: 'y' },
        { label: 'n', description: 'no', key: 'n' },
        { label: 'Esc', description: 'no', key: 'escape' },
      ];
    case 'log':
      return [
        { label: '↑↓', description: 'scroll', key: 'up' },
        { label: 'G', description: 'newest', key: 'S-g' },
        { label: 'Esc', description: 'back', key: 'escape' },
        { label: 'q', description: 'quit', key: 'q' },
      ];
    case 'help':
      return [
        { label: 'any key', description: 'close help', key: 'escape' },
        { label: '^C', description: 'quit', key: 'C-c' },
      ];
  }
}

export function actionFor(focus: Focus, key: string): Action | undefined {
  return BINDINGS[focus].find((binding) => binding.keys.includes(key))?.action;
}
