/**
 * The command line's pure logic: editing, history (up/down), Tab completion of commands and image names, and
 * parsing the seed's typed commands (`list`, `get <image> ...`, `usage`, `exit`, `help`) plus `filter [client]`
 * for the usage view.
 */
import type { CommandLine } from './view-state.types.ts';

export const TYPED_COMMANDS = ['list', 'get', 'usage', 'exit', 'help', 'filter'] as const;
const HISTORY_LIMIT = 100;

export type TypedCommand =
  | { kind: 'list' }
  | { kind: 'get'; images: string[] }
  | { kind: 'usage' }
  | { kind: 'exit' }
  | { kind: 'help' }
  | { kind: 'filter'; client: string | null }
  | { kind: 'empty' }
  | { kind: 'invalid'; message: string };

export const EMPTY_COMMAND_LINE: CommandLine = { text: '', history: [], browsing: null, draft: '' };

export function parseCommand(text: string): TypedCommand {
  const [command, ...args] = text.trim().split(/\s+/).filter(Boolean);
  switch (command) {
    case undefined:
      return { kind: 'empty' };
    case 'list':
    case 'usage':
    case 'exit':
    case 'help':
      return args.length === 0 ? { kind: command } : { kind: 'invalid', message: `${command} takes no arguments` };
    case 'get':
      return args.length > 0 ? { kind: 'get', images: args } : { kind: 'invalid', message: 'get needs an image name' };
    case 'filter':
      return args.length <= 1
        ? { kind: 'filter', client: args[0] ?? null }
        : { kind: 'invalid', message: 'filter takes one client name, or none to show every client' };
    default:
      return {
        kind: 'invalid',
        message: `unknown command '${command}'; the commands are ${TYPED_COMMANDS.join(', ')}`,
      };
  }
}

export function typeText(line: CommandLine, text: string): CommandLine {
  return { ...line, text: line.text + text, browsing: null };
}

export function deleteBack(line: CommandLine): CommandLine {
  return { ...line, text: line.text.slice(0, -1), browsing: null };
}

export function clearLine(line: CommandLine): CommandLine {
  return { ...line, text: '', browsing: null, draft: '' };
}

/** Adds an entered line to the history (not twice in a row) and empties the line. */
export function remember(line: CommandLine, entered: string): CommandLine {
  const trimmed = entered.trim();
  const history =
    trimmed === '' || line.history.at(-1) === trimmed ? line.history : [...line.history, trimmed].slice(-HISTORY_LIMIT);
  return { text: '', history, browsing: null, draft: '' };
}

/** Up: the previous entry of the history (the newest first). */
export function historyBack(line: CommandLine): CommandLine {
  if (line.history.length === 0) return line;
  const index = line.browsing === null ? line.history.length - 1 : Math.max(0, line.browsing - 1);
  const draft = line.browsing === null ? line.text : line.draft;
  return { ...line, text: line.history[index] ?? '', browsing: index, draft };
}

/** Down: the next entry of the history, and past the newest, what was typed before browsing. */
export function historyForward(line: CommandLine): CommandLine {
  if (line.browsing === null) return line;
  const index = line.browsing + 1;
  if (index >= line.history.length) return { ...line, text: line.draft, browsing: null, draft: '' };
  return { ...line, text: line.history[index] ?? '', browsing: index };
}

function commonPrefix(words: string[]): string {
  const [first = '', ...rest] = words;
  let length = first.length;
  for (const word of rest) {
    let i = 0;
    while (i < length && i < word.length && word[i] === first[i]) i++;
    length = i;
  }
  return first.slice(0, length);
}

export interface Completion {
  text: string;
  /** every match when there is more than one (for the log); empty otherwise */
  candidates: string[];
}

/**
 * Tab: completes the word being typed: a command name as the first word, an image name after `get`, a client name
 * after `filter`. One match completes it (and adds a space); several extend it to their common prefix.
 */
export function complete(text: string, imageNames: readonly string[], clientNames: readonly string[]): Completion {
  const words = text.split(' ');
  const partial = words.at(-1) ?? '';
  const first = words[0] ?? '';
  let pool: readonly string[];
  if (words.length === 1) pool = TYPED_COMMANDS;
  else if (first === 'get') pool = imageNames;
  else if (first === 'filter' && words.length === 2) pool = clientNames;
  else return { text, candidates: [] };
  const matches = pool.filter((word) => word.startsWith(partial));
  if (matches.length === 0) return { text, candidates: [] };
  const head = words.slice(0, -1).join(' ');
  const completed = matches.length === 1 ? `${matches[0]} ` : commonPrefix(matches);
  return { text: head ? `${head} ${completed}` : completed, candidates: matches.length > 1 ? matches : [] };
}
