/** What every panel offers the dashboard: its blessed element, and a way to show a view state in it. */
import type blessed from 'blessed';
import type { Rect } from '../layout.ts';
import type { ViewState } from '../view-state.types.ts';

export interface Panel {
  readonly element: blessed.Widgets.BoxElement;
  /** sets the element's content for this state; never renders the screen (the dashboard does, once per tick) */
  show(view: ViewState): void;
}

export function place(element: blessed.Widgets.BoxElement, rect: Rect): void {
  element.top = rect.top;
  element.left = rect.left;
  element.width = rect.width;
  element.height = rect.height;
}

/** The columns and rows inside a panel with a border. */
export function innerSize(element: blessed.Widgets.BoxElement): { columns: number; rows: number } {
  const width = typeof element.width === 'number' ? element.width : 0;
  const height = typeof element.height === 'number' ? element.height : 0;
  const border = element.border ? 2 : 0;
  return { columns: Math.max(0, width - border), rows: Math.max(0, height - border) };
}
