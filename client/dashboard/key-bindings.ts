/**
 * Which key does what, in one table per focus: the reducer looks actions up here, and the key bar and the help
 * screen print the same table, so what is shown is what works.
 */
import type { Focus } from './view-state.types.ts';

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
  | 'cancel';

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
}

const QUIT: Binding = { keys: ['q', 'escape', 'C-c'], label: 'q Esc ^C', action: 'quit', description: 'quit' };
const HELP: Binding = { keys: ['?'], label: '?', action: 'help', description: 'this help' };
const COMMAND: Binding = { keys: [':'], label: ':', action: 'command', description: 'type a command' };

export const BINDINGS: Record<Focus, readonly Binding[]> = {
  images: [
    { keys: ['up', 'k'], label: '↑ k', action: 'move-up', description: 'previous image' },
    { keys: ['down', 'j'], label: '↓ j', action: 'move-down', description: 'next image' },
    { keys: ['home', 'g'], label: 'Home g', action: 'first', description: 'first image' },
    { keys: ['end', 'S-g'], label: 'End G', action: 'last', description: 'last image' },
    { keys: ['pageup'], label: 'PgUp', action: 'page-up', description: 'page up' },
    { keys: ['pagedown'], label: 'PgDn', action: 'page-down', description: 'page down' },
    { keys: ['enter'], label: 'Enter', action: 'download', description: 'download the selected image' },
    { keys: ['r'], label: 'r', action: 'refresh', description: 'list the images again' },
    { keys: ['u'], label: 'u', action: 'usage', description: 'usage history (platinum)' },
    COMMAND,
    HELP,
    QUIT,
  ],
  usage: [
    { keys: ['up', 'k'], label: '↑ k', action: 'move-up', description: 'scroll up' },
    { keys: ['down', 'j'], label: '↓ j', action: 'move-down', description: 'scroll down' },
    { keys: ['home', 'g'], label: 'Home g', action: 'first', description: 'top' },
    { keys: ['end', 'S-g'], label: 'End G', action: 'last', description: 'bottom' },
    { keys: ['pageup'], label: 'PgUp', action: 'page-up', description: 'page up' },
    { keys: ['pagedown'], label: 'PgDn', action: 'page-down', description: 'page down' },
    { keys: ['f'], label: 'f', action: 'next-filter', description: 'show the next client only' },
    { keys: ['a'], label: 'a', action: 'all-clients', description: 'show every client' },
    { keys: ['s'], label: 's', action: 'save-usage', description: 'save the usage JSON to a file' },
    { keys: ['r'], label: 'r', action: 'refresh', description: 'read the usage again' },
    { keys: ['u', 'escape'], label: 'u Esc', action: 'back', description: 'back to the images' },
    COMMAND,
    HELP,
    { keys: ['q', 'C-c'], label: 'q ^C', action: 'quit', description: 'quit' },
  ],
  command: [
    { keys: ['enter'], label: 'Enter', action: 'run', description: 'run the command' },
    { keys: ['tab'], label: 'Tab', action: 'complete', description: 'complete a name' },
    { keys: ['up'], label: '↑', action: 'history-back', description: 'previous command' },
    { keys: ['down'], label: '↓', action: 'history-forward', description: 'next command' },
    { keys: ['backspace'], label: 'Backspace', action: 'delete-back', description: 'delete a character' },
    { keys: ['C-u'], label: '^U', action: 'clear-line', description: 'clear the line' },
    { keys: ['escape'], label: 'Esc', action: 'cancel', description: 'leave the command line' },
    { keys: ['C-c'], label: '^C', action: 'quit', description: 'quit' },
  ],
  help: [{ keys: ['C-c'], label: '^C', action: 'quit', description: 'quit' }],
};

/** The bottom bar: the keys a person needs most, per focus. */
export const KEY_BAR: Record<Focus, readonly BarItem[]> = {
  images: [
    { label: '?', description: 'help' },
    { label: '↑↓ j/k', description: 'move' },
    { label: 'Enter', description: 'get' },
    { label: ':', description: 'command' },
    { label: 'u', description: 'usage' },
    { label: 'r', description: 'refresh' },
    { label: 'q/Esc/^C', description: 'quit' },
  ],
  usage: [
    { label: '↑↓', description: 'scroll' },
    { label: 'f', description: 'next client' },
    { label: 'a', description: 'all' },
    { label: 's', description: 'save JSON' },
    { label: 'u/Esc', description: 'images' },
    { label: '?', description: 'help' },
    { label: 'q', description: 'quit' },
  ],
  command: [
    { label: 'Enter', description: 'run' },
    { label: 'Tab', description: 'complete' },
    { label: '↑↓', description: 'history' },
    { label: 'Esc', description: 'cancel' },
    { label: '^C', description: 'quit' },
  ],
  help: [
    { label: 'any key', description: 'close help' },
    { label: '^C', description: 'quit' },
  ],
};

export function actionFor(focus: Focus, key: string): Action | undefined {
  return BINDINGS[focus].find((binding) => binding.keys.includes(key))?.action;
}
