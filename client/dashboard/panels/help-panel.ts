/**
 * The help: the key bindings of the view in use and of the command line, and the typed commands, over the main
 * area until a key is pressed. Two columns when there is room, so it fits an 80x24 terminal.
 */
import type blessed from 'blessed';
import { BINDINGS } from '../key-bindings.ts';
import { fit, styledLine, wrap } from '../text.ts';
import type { MainView, ViewState } from '../view-state.types.ts';
import { borderedPanelBox, type Panel, place } from './panel.ts';

interface HelpLine {
  text: string;
  title: boolean;
}

const COMMANDS: ReadonlyArray<readonly [string, string]> = [
  ['list', 'list the images again'],
  ['get <image>...', 'download images'],
  ['usage', 'the usage history'],
  ['filter [client]', 'one client, or all'],
  ['help', 'this help'],
  ['exit', 'goodbye, and quit'],
];

/**
 * A titled table of keys and what they do, for `width` columns: a description too long for its column goes on
 * under itself, never cut.
 */
function section(title: string, rows: ReadonlyArray<readonly [string, string]>, width: number): HelpLine[] {
  const keyColumns = Math.max(...rows.map(([keys]) => keys.length));
  const room = Math.max(8, width - keyColumns - 2);
  const indent = ' '.repeat(keyColumns + 2);
  return [
    { text: title, title: true },
    ...rows.flatMap(([keys, what]) =>
      wrap(what, room, 0).map((part, index) => ({
        text: index === 0 ? `${keys.padEnd(keyColumns)}  ${part}` : indent + part,
        title: false,
      })),
    ),
  ];
}

function bindings(focus: 'images' | 'usage' | 'command'): Array<readonly [string, string]> {
  return BINDINGS[focus].map((binding) => [binding.label, binding.description] as const);
}

function render(line: HelpLine | undefined, width: number): string {
  if (!line) return ' '.repeat(width);
  return line.title ? styledLine([[fit(line.text, width), 'bold']], width) : styledLine([[line.text]], width);
}

/** The help's lines for `columns` inner columns: the main view's keys, then the command line's and the commands. */
export function helpLines(main: MainView, columns: number): string[] {
  const twoColumns = columns >= 70;
  const half = twoColumns ? Math.floor((columns - 2) / 2) : columns;
  const rightWidth = twoColumns ? columns - half - 2 : columns;
  const left = section(main === 'usage' ? 'usage view' : 'image list', bindings(main), half);
  const right = [
    ...section('command line (after :)', bindings('command'), rightWidth),
    { text: '', title: false },
    ...section('typed commands', COMMANDS, rightWidth),
  ];
  const footer = styledLine([['any key closes this help', 'gray-fg']], columns);
  if (!twoColumns) {
    const all = [...left, { text: '', title: false }, ...right];
    return [...all.map((line) => render(line, columns)), footer];
  }
  const rows = Math.max(left.length, right.length);
  const lines = Array.from(
    { length: rows },
    (_, index) => `${render(left[index], half)}  ${render(right[index], rightWidth)}`,
  );
  return [...lines, ' '.repeat(columns), footer];
}

export function createHelpPanel(screen: blessed.Widgets.Screen): Panel {
  const element = borderedPanelBox(screen, 'help', 'yellow', { hidden: true });
  return {
    element,
    show(view: ViewState) {
      if (view.focus !== 'help') {
        element.hide();
        return;
      }
      const columns = Math.min(screen.width as number, 84) - 2;
      const lines = helpLines(view.main, columns);
      const height = Math.min((screen.height as number) - 1, lines.length + 2);
      const width = columns + 2;
      place(element, {
        top: Math.max(0, Math.floor(((screen.height as number) - height) / 2)),
        left: Math.max(0, Math.floor(((screen.width as number) - width) / 2)),
        width,
        height,
      });
      element.setContent(lines.join('\n'));
      element.show();
      element.setFront();
    },
  };
}
