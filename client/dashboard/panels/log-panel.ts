/** The rolling log: what happened (replies, errors, quota left), newest at the bottom, long lines wrapped. */
import type blessed from 'blessed';
import { clockTime, styledLine, wrap } from '../text.ts';
import type { Tone, ViewState } from '../view-state.types.ts';
import { borderedPanelBox, innerSize, outerWidth, type Panel, panelLabel } from './panel.ts';

const TONE_STYLES: Record<Tone, string | null> = { info: null, good: 'green-fg', warn: 'yellow-fg', error: 'red-fg' };

/**
 * The newest entries of the log that fit `rows` lines (after skipping the `logScroll` newest, when scrolled back),
 * each stamped with its time and wrapped to `columns` under its text; an entry is shown whole or not at all, except
 * the newest shown, which is cut when it alone is taller than the panel.
 */
export function logLines(view: ViewState, columns: number, rows: number): string[] {
  const lines: string[] = [];
  // Only the newest entries can be visible: wrap from the end and stop once the panel is full.
  for (let index = view.log.length - 1 - view.logScroll; index >= 0; index--) {
    const entry = view.log[index];
    if (!entry) continue;
    const stamp = clockTime(entry.at);
    const style = TONE_STYLES[entry.tone] ?? undefined;
    const wrapped = wrap(`${stamp} ${entry.text}`, columns, stamp.length + 1).map((line) =>
      styledLine([[line, style]], columns),
    );
    if (lines.length > 0 && lines.length + wrapped.length > rows) break;
    lines.unshift(...wrapped);
  }
  return lines.slice(0, rows);
}

export function createLogPanel(screen: blessed.Widgets.Screen): Panel {
  const element = borderedPanelBox(screen, 'log', 'blue');
  return {
    element,
    show(view) {
      const { columns, rows } = innerSize(element);
      const scrolled = view.logScroll > 0 ? ` (${view.logScroll} newer below: G)` : '';
      element.setLabel(panelLabel(`log${view.focus === 'log' ? ' ↑↓' : ''}${scrolled}`, outerWidth(element)));
      element.style.border.fg = view.focus === 'log' ? 'yellow' : 'blue';
      element.setContent(logLines(view, columns, rows).join('\n'));
    },
  };
}
