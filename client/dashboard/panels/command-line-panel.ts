/**
 * The command line: what is being typed after ':' (with a block cursor), or a hint of the commands when idle.
 * The editing itself (history, completion) is in command-line.ts; this panel only shows it.
 */
import type blessed from 'blessed';
import { cellWidth, styledLine, truncate, truncateLeft } from '../text.ts';
import type { ViewState } from '../view-state.types.ts';
import { closedForIdleness } from '../view-state-steps.ts';
import { linePanel, type Panel } from './panel.ts';

/** A line being typed after its prompt, its end kept in view (that is where the typing happens), with a cursor. */
function editing(prompt: string, text: string, columns: number): string {
  const room = Math.max(1, columns - prompt.length - 2);
  return styledLine([[prompt, 'bold'], [` ${truncateLeft(text, room)}`], [' ', 'inverse']], columns);
}

export function commandLineText(view: ViewState, columns: number): string {
  if (view.focus === 'command') return editing(':', view.command.text, columns);
  if (view.focus === 'search') return editing('/', view.search, columns);
  if (view.focus === 'confirm' && view.confirm) {
    // A long image name gives way, never the question's end (what a yes does).
    const { text, image } = view.confirm;
    const room = cellWidth(image) - (cellWidth(text) + 1 - columns);
    const shown = room < cellWidth(image) ? text.replace(image, truncate(image, Math.max(1, room))) : text;
    return styledLine([[` ${shown}`, 'bold,yellow-fg']], columns);
  }
  if (closedForIdleness(view)) {
    const text = ' closed while idle: r, Enter, u or a command opens a new session; q quits';
    return styledLine([[text, 'gray-fg']], columns);
  }
  if (view.connection.kind === 'closed') {
    return styledLine([[' the session is over: r reconnects (a new session), q quits', 'gray-fg']], columns);
  }
  return styledLine([[' : type a command (list, get <image>, usage, exit, help)', 'gray-fg']], columns);
}

export function createCommandLinePanel(screen: blessed.Widgets.Screen): Panel {
  return linePanel(screen, commandLineText);
}
