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
  /** how the help screen names the keys: their names (keyName), a shifted letter beside the same letter left out */
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

const KEY_NAMES: Readonly<Record<string, string>> = {
  up: '↑',
  down: '↓',
  home: 'Home',
  end: 'End',
  pageup: 'PgUp',
  pagedown: 'PgDn',
  enter: 'Enter',
  escape: 'Esc',
  tab: 'Tab',
  backspace: 'Backspace',
};

/** How the help and the key bar name a blessed key: '↑' for up, 'Esc', '^C' for C-c, 'G' for S-g. */
export function keyName(key: string): string {
  const [, modifier, letter] = /^([CS])-(.)$/.exec(key) ?? [];
  if (modifier === 'C') return `^${letter?.toUpperCase()}`;
  if (modifier === 'S') return String(letter?.toUpperCase());
  return KEY_NAMES[key] ?? key;
}

function bind(keys: readonly string[], action: Action, description: string): Binding {
  // y and S-y are one key to a person: "y"
  const named = keys.filter((key) => !(key.startsWith('S-') && keys.includes(key.slice(2).toLowerCase())));
  return { keys, label: named.map(keyName).join(' '), action, description };
}

const QUIT = bind(['q', 'C-c'], 'quit', 'quit');
const HELP = bind(['?'], 'help', 'this help');
const COMMAND = bind([':'], 'command', 'type a command');
const CTRL_C = bind(['C-c'], 'quit', 'quit');

export const BINDINGS: Record<Focus, readonly Binding[]> = {
  images: [
    bind(['up', 'k'], 'move-up', 'previous image'),
    bind(['down', 'j'], 'move-down', 'next image'),
    bind(['home', 'g'], 'first', 'first image'),
    bind(['end', 'S-g'], 'last', 'last image'),
    bind(['pageup'], 'page-up', 'page up'),
    bind(['pagedown'], 'page-down', 'page down'),
    bind(['enter'], 'download', 'download the selected image'),
    bind(['/'], 'search', 'search the names'),
    bind(['s'], 'sort', 'sort by name, size, date'),
    bind(['r'], 'refresh', 'list again; reconnect once over'),
    bind(['u'], 'usage', 'usage history (platinum)'),
    bind(['l'], 'log', 'scroll the log'),
    bind(['escape'], 'back', 'clear the search'),
    COMMAND,
    HELP,
    QUIT,
  ],
  usage: [
    bind(['up', 'k'], 'move-up', 'previous row'),
    bind(['down', 'j'], 'move-down', 'next row'),
    bind(['home', 'g'], 'first', 'first row'),
    bind(['end', 'S-g'], 'last', 'last row'),
    bind(['pageup'], 'page-up', 'page up'),
    bind(['pagedown'], 'page-down', 'page down'),
    bind(['f'], 'next-filter', 'show the next client only'),
    bind(['a'], 'all-clients', 'show every client'),
    bind(['s'], 'save-usage', 'save what is shown as JSON'),
    bind(['r'], 'refresh', 'read the usage again'),
    bind(['u', 'escape'], 'back', 'back to the images'),
    COMMAND,
    HELP,
    QUIT,
  ],
  command: [
    bind(['enter'], 'run', 'run the command'),
    bind(['tab'], 'complete', 'complete a name'),
    bind(['up'], 'history-back', 'previous command'),
    bind(['down'], 'history-forward', 'next command'),
    bind(['backspace'], 'delete-back', 'delete a character'),
    bind(['C-u'], 'clear-line', 'clear the line'),
    bind(['escape'], 'cancel', 'leave the command line'),
    CTRL_C,
  ],
  search: [
    bind(['enter'], 'run', 'keep the search'),
    bind(['backspace'], 'delete-back', 'delete a character'),
    bind(['C-u'], 'clear-line', 'clear the search'),
    bind(['escape'], 'cancel', 'clear the search and leave'),
    CTRL_C,
  ],
  confirm: [bind(['y', 'S-y'], 'yes', 'yes, do it'), bind(['n', 'S-n', 'escape'], 'no', 'no'), CTRL_C],
  log: [
    bind(['up', 'k'], 'move-up', 'older'),
    bind(['down', 'j'], 'move-down', 'newer'),
    bind(['home', 'g'], 'first', 'oldest'),
    bind(['end', 'S-g'], 'last', 'newest'),
    bind(['pageup'], 'page-up', 'page up'),
    bind(['pagedown'], 'page-down', 'page down'),
    bind(['l', 'escape'], 'back', 'back'),
    HELP,
    QUIT,
  ],
  // Any key but ^C closes the help (onKey); Esc is the one the key bar presses.
  help: [bind(['escape'], 'back', 'close the help'), CTRL_C],
};

/**
 * An item of the key bar: keys of the focus's bindings, named as the table names them ('↑↓' for two), with a short
 * description, shown when `shown` says so (always by default).
 */
interface BarSlot {
  keys: readonly string[];
  description: string | ((view: ViewState) => string);
  /** the key a click presses (default: the first of `keys`) */
  press?: string;
  /** what the bar says instead of the keys' names, where no key name says it */
  label?: string;
  optional?: true;
  shown?: (view: ViewState) => boolean;
}

/** Once the session is over, no get, command line or usage; once the server closed it for idleness, they all work. */
const sessionOpen = (view: ViewState) => view.connection.kind === 'connected' || closedForIdleness(view);
const sessionOver = (view: ViewState) => view.connection.kind === 'closed';

/** The keys a person needs most for each focus, in the bar's order. Each must be bound in BINDINGS (checked below). */
const KEY_BAR: Record<Focus, readonly BarSlot[]> = {
  images: [
    { keys: ['?'], description: 'help' },
    { keys: ['up', 'down'], press: 'down', description: 'move', optional: true },
    { keys: ['enter'], description: 'get', shown: sessionOpen },
    { keys: ['/'], description: 'search' },
    { keys: ['s'], description: 'sort', optional: true },
    { keys: [':'], description: 'command', shown: sessionOpen },
    { keys: ['u'], description: 'usage', shown: (view) => sessionOpen(view) && view.identity?.canReadUsage === true },
    // r lists again while the session is open, and reconnects once it is over
    {
      keys: ['r'],
      description: (view) => (sessionOver(view) ? 'reconnect' : 'refresh'),
      shown: (view) => sessionOpen(view) || sessionOver(view),
    },
    { keys: ['l'], description: 'log', optional: true },
    { keys: ['escape'], description: 'clear search', shown: (view) => Boolean(view.search) },
    { keys: ['q'], description: 'quit' },
  ],
  usage: [
    { keys: ['up', 'down'], press: 'down', description: 'move' },
    { keys: ['f'], description: 'next client' },
    { keys: ['a'], description: 'all' },
    { keys: ['s'], description: (view) => (view.usage.filter === null ? 'save all' : 'save shown') },
    { keys: ['escape'], description: 'images' },
    { keys: ['?'], description: 'help' },
    { keys: ['q'], description: 'quit' },
  ],
  command: [
    { keys: ['enter'], description: 'run' },
    { keys: ['tab'], description: 'complete' },
    { keys: ['up', 'down'], description: 'history' },
    { keys: ['escape'], description: 'cancel' },
    { keys: ['C-c'], description: 'quit' },
  ],
  search: [
    { keys: ['enter'], description: 'keep' },
    { keys: ['escape'], description: 'clear' },
    { keys: ['C-c'], description: 'quit' },
  ],
  confirm: [
    { keys: ['y'], description: 'yes' },
    { keys: ['n'], description: 'no' },
    { keys: ['escape'], description: 'no' },
  ],
  log: [
    { keys: ['up', 'down'], description: 'scroll' },
    { keys: ['S-g'], description: 'newest' },
    { keys: ['escape'], description: 'back' },
    { keys: ['q'], description: 'quit' },
  ],
  help: [
    { keys: ['escape'], label: 'any key', description: 'close help' },
    { keys: ['C-c'], description: 'quit' },
  ],
};

// What the bar shows is what works: a key on it that its focus's table does not bind is a mistake, found at load.
for (const [focus, slots] of Object.entries(KEY_BAR) as Array<[Focus, readonly BarSlot[]]>) {
  for (const slot of slots) {
    for (const key of [...slot.keys, slot.press ?? '']) {
      if (key && !actionFor(focus, key)) throw new Error(`the key bar of ${focus} shows ${key}, which is not bound`);
    }
  }
}

/** The bottom bar: the keys a person needs most for this focus, and only those that work in this state. */
export function keyBarItems(view: ViewState): BarItem[] {
  return KEY_BAR[view.focus]
    .filter((slot) => slot.shown?.(view) ?? true)
    .map((slot) => ({
      label: slot.label ?? slot.keys.map(keyName).join(''),
      description: typeof slot.description === 'string' ? slot.description : slot.description(view),
      key: slot.press ?? (slot.keys[0] as string),
      ...(slot.optional ? { optional: true } : {}),
    }));
}

export function actionFor(focus: Focus, key: string): Action | undefined {
  return BINDINGS[focus].find((binding) => binding.keys.includes(key))?.action;
}
