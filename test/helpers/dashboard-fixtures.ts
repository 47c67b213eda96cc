/**
 * For tests of the dashboard's pure parts: a fixed clock, two sessions (platinum and bronze), image rows, and a way
 * to feed the view-state reducer events and keys. No terminal, no server.
 */
import { initialViewState, update } from '../../client/dashboard/view-state.ts';
import type {
  DashboardEvent,
  Effect,
  ImageRow,
  Transition,
  ViewState,
} from '../../client/dashboard/view-state.types.ts';
import type { Quota, SessionIdentity } from '../../src/protocol/index.ts';

export const NOW = Date.parse('2026-11-25T10:00:00.000Z');
export const PLATINUM = { name: 'client-7', code: 950, tier: 'platinum', canReadUsage: true };
export const BRONZE = { name: 'client-8', code: 108, tier: 'bronze', canReadUsage: false };
export const QUOTA_20 = { limit: 20, used: 0, remaining: 20 };
export const HASH_A = 'a'.repeat(64);

/** An image row as listed, not downloading: 1000 bytes, hash HASH_A, not saved, unless `fields` say otherwise. */
export function row(name: string, fields: Partial<Omit<ImageRow, 'download'>> = {}): Omit<ImageRow, 'download'> {
  return {
    name,
    bytes: 1000,
    modified: '2026-11-25T09:00:00.000Z',
    sha256: HASH_A,
    local: 'absent',
    saved: null,
    ...fields,
  };
}

/** Feeds events one after the other; returns the last state and every effect asked for on the way. */
export function feed(state: ViewState, ...events: DashboardEvent[]): Transition {
  const effects: Effect[] = [];
  for (const event of events) {
    const next = update(state, event, NOW);
    state = next.state;
    effects.push(...next.effects);
  }
  return { state, effects };
}

/** Key presses by blessed name ('down', 'S-g'); a single character is typed as itself. */
export function keys(...names: string[]): DashboardEvent[] {
  return names.map((full) => ({ type: 'key', key: { full, ch: full.length === 1 ? full : undefined } }));
}

/** The state once `session` is connected and has listed `images`. */
export function listedState(
  images: Array<Omit<ImageRow, 'download'>>,
  session: SessionIdentity = PLATINUM,
  quota: Quota = QUOTA_20,
): ViewState {
  return feed(
    initialViewState('127.0.0.1:7878', 'client-cache'),
    { type: 'connected', server: 'imgcache/0.1.0', session, quota },
    { type: 'list-loaded', images, session, quota },
  ).state;
}
