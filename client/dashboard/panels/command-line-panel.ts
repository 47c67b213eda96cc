/**
 * The command line: what is being typed after ':' (with a block cursor), or a hint of the commands when idle.
 * The editing itself (history, completion) is in command-line.ts; this panel only shows it.
 */
import blessed from 'blessed';
import { escapeTags, styledLine } from '../text.ts';
import type { ViewState } from '../view-state.types.ts';
import type { Panel } from './panel.ts';

export function commandLineText(view: ViewState, columns: number): string {
  if (view.focus !== 'command') {
    return styledLine([[' : type a command (list, get <image>, usage, exit, help)', 'gray-fg']], columns);
  }
  // Keep the end of a long line in view: that is where the typing happens.
  const room = Math.max(1, columns - 3);
  const text = view.command.text.length > room ? `…${view.command.text.slice(-(room - 1))}` : view.command.text;
  return `{bold}:{/} ${escapeTags(text)}{inverse} {/}`;
}

export function createCommandLinePanel(screen: blessed.Widgets.Screen): Panel {
  const element = blessed.box({ parent: screen, tags: true });
  return {
    element,
    show(view) {
      const columns = typeof element.width === 'number' ? element.width : 0;
      element.setContent(commandLineText(view, columns));
    },
  };
}
