/**
 * The banner: one or two lines that say, in words, what state the session is in when it is not a normal one
 * (quota used up, session closed by the server, connection dropped). It stays until the person quits.
 */
import type blessed from 'blessed';
import { styledLine, wrap } from '../text.ts';
import type { Tone, ViewState } from '../view-state.types.ts';
import { closedForIdleness } from '../view-state-steps.ts';
import { innerSize, type Panel, panelBox } from './panel.ts';

/** the banner's rows at the most: a sentence too long for them is cut, never how to go on */
export const MAX_BANNER_ROWS = 3;

const TONE_STYLES: Record<Tone, string> = {
  info: 'bold',
  good: 'bold,green-fg',
  warn: 'bold,yellow-fg',
  error: 'bold,white-fg,red-bg',
};

/** What the banner adds to its sentence once the session is over: how to go on. */
function bannerSuffix(view: ViewState): string {
  const over = view.connection.kind === 'closed' || view.connection.kind === 'rejected';
  // [P-27] closed for idleness: the banner already says how to go on
  if (closedForIdleness(view) || !over) return '';
  return ' Press r to reconnect, q to quit.';
}

/** The banner's text: its sentence, and how to leave once the session is over. */
export function bannerText(view: ViewState): string | null {
  return view.banner ? `${view.banner.text}${bannerSuffix(view)}` : null;
}

/**
 * The banner's lines, `columns` wide, wrapped onto `rows` lines at the most. When the whole text needs more, the
 * sentence loses words from its end (marked '…'); how to go on is always said whole.
 */
export function bannerLines(view: ViewState, columns: number, rows = MAX_BANNER_ROWS): string[] {
  if (!view.banner) return [];
  const suffix = bannerSuffix(view);
  const words = view.banner.text.split(' ');
  let lines = wrap(` ${view.banner.text}${suffix}`, columns, 1);
  while (lines.length > rows && words.length > 1) {
    words.pop();
    lines = wrap(` ${words.join(' ')}…${suffix}`, columns, 1);
  }
  const style = TONE_STYLES[view.banner.tone];
  return lines.slice(0, rows).map((line) => styledLine([[line, style]], columns));
}

export function createBannerPanel(screen: blessed.Widgets.Screen): Panel {
  const element = panelBox(screen);
  return {
    element,
    show(view) {
      // The rows the layout gave it: as many as bannerLines asked for the screen's height.
      const { columns, rows } = innerSize(element);
      element.setContent(bannerLines(view, columns, rows).join('\n'));
    },
  };
}
