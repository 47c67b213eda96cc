/**
 * What a terminal too small for the layout shows instead of panels cut to nothing: the size needed and the size it
 * is, who you are and the state of the session, and that q quits; centred, as htop and lazygit do. The screen comes
 * back by itself once the terminal is large enough.
 */
import type blessed from 'blessed';
import { MIN_COLUMNS, MIN_ROWS } from '../layout.ts';
import { cellWidth, type Segment, styledLine, wrap } from '../text.ts';
import type { ViewState } from '../view-state.types.ts';
import { connectionSegment } from './header-panel.ts';
import { type Panel, panelBox } from './panel.ts';

/** Pieces of text, each wrapped to `columns` (at spaces) and centred; a piece's style goes with all its lines. */
function centredLines(pieces: readonly Segment[], columns: number, rows: number): string[] {
  const lines = pieces.flatMap(([text, style]) => wrap(text, columns, 0).map((line): Segment => [line, style ?? '']));
  const shown = lines.slice(0, Math.max(1, rows));
  const top = Math.max(0, Math.floor((rows - shown.length) / 2));
  const blank = ' '.repeat(Math.max(0, columns));
  const centred = shown.map(([text, style]) => {
    const left = ' '.repeat(Math.max(0, Math.floor((columns - cellWidth(text)) / 2)));
    return styledLine([[left], [text, style || undefined]], columns);
  });
  return [...Array.from({ length: top }, () => blank), ...centred];
}

/** The message's lines for a terminal of `columns` x `rows`. */
export function tooSmallLines(view: ViewState, columns: number, rows: number): string[] {
  const identity = view.identity;
  const who = identity ? `${identity.name} · ${identity.tier} · ` : '';
  const [state, style] = connectionSegment(view, true);
  return centredLines(
    [
      [`imgcache needs a terminal of at least ${MIN_COLUMNS}x${MIN_ROWS} (this one is ${columns}x${rows})`, 'bold'],
      [`${who}${state}`, style],
      ['q quits', 'gray-fg'],
    ],
    columns,
    rows,
  );
}

export function createTooSmallPanel(screen: blessed.Widgets.Screen): Panel {
  const element = panelBox(screen, { hidden: true });
  return {
    element,
    show(view) {
      const columns = screen.width as number;
      const rows = screen.height as number;
      element.setContent(tooSmallLines(view, columns, rows).join('\n'));
    },
  };
}
