/**
 * [P-64] How much of its quota each keyed identity has used in its current period, as a pure projection of the
 * history: images served to the identity's sessions within the period's window, less those whose transfer did not
 * end whole ([P-42]). The server rebuilds its ledger from it at start, so a quota survives restarts; `clients list`
 * shows it. Storage-agnostic: db/registry-store.ts feeds it from SQLite.
 */

/** A keyed session: its number and the identity it belonged to. */
export interface KeyedAdmission {
  session: number;
  identity: string;
}

/** An image-served or transfer-incomplete event of any session, in position order. */
export interface CountedEvent {
  session: number | null;
  /** ms since the epoch */
  at: number;
  type: string;
}

export interface IdentityUsageInput {
  admissions: Iterable<KeyedAdmission>;
  events: Iterable<CountedEvent>;
  /** the start of the identity's current window (ms since the epoch), or null when its quota has no period */
  windowStartOf: (identity: string) => number | null;
}

/** Images used by each identity in its current window (identities with none are absent). */
export function projectIdentityUsage(input: IdentityUsageInput): Map<string, number> {
  const identityOf = new Map<number, string>();
  for (const admission of input.admissions) identityOf.set(admission.session, admission.identity);
  const used = new Map<string, number>();
  /** sessions whose last image served was counted (so its transfer-incomplete takes it back) */
  const lastCounted = new Set<number>();
  for (const event of input.events) {
    if (event.session === null) continue;
    const identity = identityOf.get(event.session);
    if (identity === undefined) continue;
    const start = input.windowStartOf(identity);
    if (event.type === 'image-served') {
      if (start !== null && event.at >= start) {
        used.set(identity, (used.get(identity) ?? 0) + 1);
        lastCounted.add(event.session);
      } else lastCounted.delete(event.session);
    } else if (event.type === 'transfer-incomplete' && lastCounted.delete(event.session)) {
      const count = (used.get(identity) ?? 0) - 1;
      if (count > 0) used.set(identity, count);
      else used.delete(identity);
    }
  }
  return used;
}
