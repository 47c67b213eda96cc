/**
 * The header: where we are connected and in what state, who we are (name, code, tier), and the quota gauge
 * "N of M left" that moves with every reply [P-17].
 */
import type blessed from 'blessed';
import { bar, type Segment, styledLine, visibleLength } from '../text.ts';
import type { ViewState } from '../view-state.types.ts';
import { linePanel, type Panel } from './panel.ts';

const GAUGE_CELLS = 20;

const TIER_COLOURS: Record<string, string> = {
  bronze: 'yellow-fg',
  silver: 'white-fg',
  gold: 'bold,yellow-fg',
  platinum: 'bold,cyan-fg',
};

/** The connection's state; `short`: a closed session's reason without the word "closed" (still marked ✖). */
export function connectionSegment(view: ViewState, short = false): Segment {
  const connection = view.connection;
  switch (connection.kind) {
    case 'connecting':
      return ['◌ connecting…', 'yellow-fg'];
    case 'connected':
      return ['● connected', 'green-fg'];
    case 'closed':
      // [P-27] closed for idleness: nothing is wrong, the next action reconnects
      if (connection.idle) return ['○ closed while idle', 'yellow-fg'];
      return [short ? `✖ ${connection.why}` : `✖ closed: ${connection.why}`, 'bold,red-fg'];
    case 'rejected':
      return [short ? `✖ ${connection.why}` : `✖ rejected: ${connection.why}`, 'bold,red-fg'];
  }
}

/** Who we are: name, code, tier; `short` leaves out the words "you are". */
function identitySegments(view: ViewState, short: boolean): Segment[] {
  const identity = view.identity;
  if (!identity) return [];
  return [
    [short ? '' : 'you are '],
    [identity.name, 'bold'],
    [`  code ${identity.code}  `],
    [identity.tier, TIER_COLOURS[identity.tier] ?? 'bold'],
    // [P-68] a keyed session's registered identity
    ...(identity.identity === undefined ? [] : ([[`  as ${identity.identity}`, 'bold']] as Segment[])),
    ['  '],
  ];
}

/**
 * Two tagged lines of exactly `width` cells. Who we are (name, code, tier) comes before the connection's state, so
 * a long reason for a closed session is what gets cut, never the tier (the banner says the reason whole). Before
 * anything is cut, the line is said shorter: without "you are", then the state without "closed:".
 */
export function headerLines(view: ViewState, width: number): [string, string] {
  const start: Segment[] = [[' imgcache ', 'bold'], [` ${view.address}  `]];
  const variants: Segment[][] = [
    [...start, ...identitySegments(view, false), connectionSegment(view)],
    [...start, ...identitySegments(view, true), connectionSegment(view)],
    [...start, ...identitySegments(view, true), connectionSegment(view, true)],
  ];
  const first = variants.find((segments) => visibleLength(segments) <= width) ?? variants[variants.length - 1] ?? [];
  const quota = view.quota;
  const second: Segment[] = [[' quota ']];
  if (quota) {
    const fraction = quota.limit > 0 ? quota.remaining / quota.limit : 0;
    const colour = quota.remaining === 0 ? 'red-fg' : fraction <= 0.25 ? 'yellow-fg' : 'green-fg';
    second.push([bar(fraction, GAUGE_CELLS), colour], [` ${quota.remaining} of ${quota.limit} left`, 'bold']);
    // [P-64] a keyed quota runs over a period: when it resets
    if (quota.resetsAt)
      second.push([` per ${quota.period}, resets ${quota.resetsAt.slice(0, 16).replace('T', ' ')} UTC`]);
  } else second.push(['…', 'gray-fg']);
  // What is nice to know but not needed comes last, and only whole.
  const extras: Segment[] = [[`   cache ${view.cacheFolder}`, 'gray-fg']];
  if (view.server) extras.unshift([`   server ${view.server}`, 'gray-fg']);
  for (const extra of extras) if (visibleLength([...second, extra]) <= width) second.push(extra);
  return [styledLine(first, width), styledLine(second, width)];
}

export function createHeaderPanel(screen: blessed.Widgets.Screen): Panel {
  return linePanel(screen, (view, width) => headerLines(view, width).join('\n'), { style: { bg: 'black' } });
}
