/** The bottom bar: the keys that work right now (they change with the focus), from the one table of bindings. */
import blessed from 'blessed';
import { KEY_BAR } from '../key-bindings.ts';
import { type Segment, styledLine } from '../text.ts';
import type { ViewState } from '../view-state.types.ts';
import type { Panel } from './panel.ts';

export function keyBarLine(view: ViewState, columns: number): string {
  // Wide terminals get padded key caps; narrow ones the compact form, so that 80 columns hold every key.
  const padded = columns >= 100;
  const segments: Segment[] = [[' ']];
  for (const item of KEY_BAR[view.focus]) {
    segments.push(padded ? [` ${item.label} `, 'inverse'] : [item.label, 'inverse'], [` ${item.description}  `]);
  }
  return styledLine(segments, columns);
}

export function createKeyBarPanel(screen: blessed.Widgets.Screen): Panel {
  const element = blessed.box({ parent: screen, tags: true });
  return {
    element,
    show(view) {
      const columns = typeof element.width === 'number' ? element.width : 0;
      element.setContent(keyBarLine(view, columns));
    },
  };
}
