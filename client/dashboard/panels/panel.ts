/** What every panel offers the dashboard: its blessed element, and a way to show a view state in it. */
import blessed from 'blessed';
import type { Rect } from '../layout.ts';
import { truncate } from '../text.ts';
import type { ViewState } from '../view-state.types.ts';

export interface Panel {
  readonly element: blessed.Widgets.BoxElement;
  /** sets the element's content for this state; never renders the screen (the dashboard does, once per tick) */
  show(view: ViewState): void;
}

/**
 * The one way a panel's box is made: tags on, and blessed's own wrapping off. Every line a panel sets is made
 * exactly as wide as the panel by text.ts (`styledLine`, `fit`); with wrapping on, blessed breaks such a line a
 * second time at its last space whenever a style tag follows the last cell.
 */
export function panelBox(
  screen: blessed.Widgets.Screen,
  options: blessed.Widgets.BoxOptions = {},
): blessed.Widgets.BoxElement {
  return blessed.box({ parent: screen, tags: true, wrap: false, ...options } as blessed.Widgets.BoxOptions);
}

/** A panel's box with a line border in `colour` and `title` on it. */
export function borderedPanelBox(
  screen: blessed.Widgets.Screen,
  title: string,
  colour: string,
  options: blessed.Widgets.BoxOptions = {},
): blessed.Widgets.BoxElement {
  return panelBox(screen, {
    border: { type: 'line' },
    label: ` ${title} `,
    style: { border: { fg: colour } },
    ...options,
  });
}

/**
 * A panel without a border whose whole content is a function of the view and the panel's width: the header, the
 * banner, the command line and the key bar.
 */
export function linePanel(
  screen: blessed.Widgets.Screen,
  content: (view: ViewState, columns: number) => string,
  options: blessed.Widgets.BoxOptions = {},
): Panel {
  const element = panelBox(screen, options);
  return {
    element,
    show(view) {
      element.setContent(content(view, outerWidth(element)));
    },
  };
}

/**
 * A border label that stays on the border: blessed puts it after the corner and one line ('┌─'), so the text is cut
 * to leave a space each side and at least one line before the other corner ('─┐').
 */
export function panelLabel(text: string, panelWidth: number): string {
  return ` ${truncate(text, Math.max(1, panelWidth - 6))} `;
}

export function place(element: blessed.Widgets.BoxElement, rect: Rect): void {
  element.top = rect.top;
  element.left = rect.left;
  element.width = rect.width;
  element.height = rect.height;
}

/** The columns a panel covers, its border included (0 before it is placed). */
export function outerWidth(element: blessed.Widgets.BoxElement): number {
  return typeof element.width === 'number' ? element.width : 0;
}

/** The columns and rows inside a panel with a border. */
export function innerSize(element: blessed.Widgets.BoxElement): { columns: number; rows: number } {
  const width = outerWidth(element);
  const height = typeof element.height === 'number' ? element.height : 0;
  const border = element.border ? 2 : 0;
  return { columns: Math.max(0, width - border), rows: Math.max(0, height - border) };
}
