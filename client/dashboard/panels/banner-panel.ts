/**
 * The banner: one or two lines that say, in words, what state the session is in when it is not a normal one
 * (quota used up, session closed by the server, connection dropped). It stays until the person quits.
 */
import type blessed from 'blessed';
import { styledLine, wrap } from '../text.ts';
import type { Tone, ViewState } from '../view-state.types.ts';
import { closedForIdleness } from '../view-state-steps.ts';
import { linePanel, type Panel } from './panel.ts';

export const BANNER_ROWS = 2;

const TONE_STYLES: Record<Tone, string> = {
  info: 'bold',
  good: 'bold,green-fg',
  warn: 'bold,yellow-fg',
  error: 'bold,white-fg,red-bg',
};

/** The banner's text: its sentence, and how to leave once the session is over. */
export function bannerText(view: ViewState): string | null {
  if (!view.banner) return null;
  const over = view.connection.kind === 'closed' || view.connection.kind === 'rejected';
  // [P-27] closed for idleness: the banner already says how to go on
  if (closedForIdleness(view)) return view.banner.text;
  return over ? `${view.banner.text} Press r to reconnect, q to quit.` : view.banner.text;
}

export function bannerLines(view: ViewState, columns: number): string[] {
  const text = bannerText(view);
  if (text === null || !view.banner) return [];
  const style = TONE_STYLES[view.banner.tone];
  return wrap(` ${text}`, columns, 1)
    .slice(0, BANNER_ROWS)
    .map((line) => styledLine([[line, style]], columns));
}

export function createBannerPanel(screen: blessed.Widgets.Screen): Panel {
  return linePanel(screen, (view, columns) => bannerLines(view, columns).join('\n'));
}
