/**
 * [P-60]-[P-66] Who may come in, as whom, and with what quota: the server's one place for access modes, keys, the
 * throttle of failed keys, and keyed quotas over periods. It holds the registry (a projection of the history's
 * registry events, caught up by `apply`) and the ledger of each identity's images in its current window; it does no
 * I/O itself, so it is the same whatever store the events come from.
 */
import { applyRegistryEvent, clientByKeyId, type Registry, type RegistryChange } from '../../db/client-registry.ts';
import type { StoredEvent } from '../../db/events.ts';
import { isoTime } from '../../db/iso-time.ts';
import {
  DEFAULT_QUOTA_PERIOD,
  periodWindow,
  type TierRange,
  type TierTable,
  tierByName,
} from '../../machines/tiers.ts';
import type { AccessMode } from '../config.ts';
import type { CredentialRejectReason, Quota, SessionIdentity } from '../protocol/messages.ts';
import { parseClientKey, secretMatches } from './client-key.ts';
import { CredentialThrottle, type ThrottleOptions } from './credential-throttle.ts';
import { QuotaLedger } from './quota-ledger.ts';

export type AccessDecision =
  /** [P-20] open mode: the code decides the tier, as always */
  | { kind: 'open' }
  /** [P-60] mixed mode, no key: the operator's anonymous tier */
  | { kind: 'anonymous'; range: TierRange }
  /** [P-60] a registered key */
  | { kind: 'keyed'; identity: string; range: TierRange }
  /** [P-62] [P-63] REJECT */
  | {
      kind: 'refused';
      reason: CredentialRejectReason;
      message: string;
      /** the registered name the key claimed, for the record (never the key) */
      identity?: string;
      keyId?: string;
      retryAfterMs?: number;
    };

export interface AccessControlOptions {
  mode: AccessMode;
  tiers: TierTable;
  /** '' = the tier of the lowest codes */
  anonymousTier: string;
  registry: Registry;
  throttle?: Partial<ThrottleOptions>;
  /**
   * Reads the registry events after a position, from the store: asked when a key's id is unknown, so that a client
   * registered a moment ago is admitted without waiting for the next look (one probe of an index).
   */
  readEventsAfter?: (position: number) => readonly StoredEvent[];
  /** told of every change the registry's events make, wherever they were read ([P-66]: revocations close sessions) */
  onChange?: (change: RegistryChange) => void;
}

/** A keyed quota's window: the ledger counts in it. */
export interface QuotaWindow {
  identity: string;
  start: number;
  /** [P-85] the quota's limit in this window (images) */
  limit: number;
}

export class AccessControl {
  readonly mode: AccessMode;
  readonly #tiers: TierTable;
  readonly #anonymous: TierRange;
  readonly #registry: Registry;
  readonly #throttle: CredentialThrottle;
  readonly #readEventsAfter: ((position: number) => readonly StoredEvent[]) | undefined;
  readonly #onChange: ((change: RegistryChange) => void) | undefined;
  readonly ledger = new QuotaLedger();

  constructor(options: AccessControlOptions) {
    this.mode = options.mode;
    this.#tiers = options.tiers;
    this.#registry = options.registry;
    const lowest = options.tiers[0];
    if (!lowest) throw new Error('access control: an empty tier table');
    this.#anonymous =
      (options.anonymousTier === '' ? undefined : tierByName(options.tiers, options.anonymousTier)) ?? lowest;
    this.#throttle = new CredentialThrottle(options.throttle);
    this.#readEventsAfter = options.readEventsAfter;
    this.#onChange = options.onChange;
  }

  get registry(): Registry {
    return this.#registry;
  }

  /** Applies registry events read after the registry's position; returns what changed (each also told onChange). */
  apply(events: readonly StoredEvent[]): RegistryChange[] {
    const changes: RegistryChange[] = [];
    for (const event of events) {
      const change = applyRegistryEvent(this.#registry, event);
      if (!change || change.kind === 'ignored') continue;
      changes.push(change);
      this.#onChange?.(change);
    }
    return changes;
  }

  /** Applies the registry events the store holds after the registry's position, if it can read them. */
  catchUp(): RegistryChange[] {
    return this.#readEventsAfter ? this.apply(this.#readEventsAfter(this.#registry.position)) : [];
  }

  /**
   * [P-60] [P-86] Whether the registry as held knows the key id `credential` names; true for anything that is not a
   * key (there is nothing to look up for it).
   */
  knowsKeyOf(credential: unknown): boolean {
    if (this.mode === 'open' || credential === undefined || credential === null) return true;
    const key = parseClientKey(credential);
    return !key || clientByKeyId(this.#registry, key.keyId) !== undefined;
  }

  /**
   * [P-60] [P-62] [P-63] The decision on a HELLO's `credential` from `address`, at `now` (a monotonic clock, ms). In
   * open mode the credential is ignored ([P-8]). A key is checked in constant time; a failed one counts against the
   * address, and an address past its failures is refused before its key is looked at.
   */
  decide(credential: unknown, address: string, now: number): AccessDecision {
    if (this.mode === 'open') return { kind: 'open' };
    if (credential === undefined || credential === null) {
      if (this.mode === 'mixed') return { kind: 'anonymous', range: this.#anonymous };
      return { kind: 'refused', reason: 'credential-required', message: 'this server admits registered clients only' };
    }
    const wait = this.#throttle.retryAfterMs(address, now);
    if (wait > 0) {
      return {
        kind: 'refused',
        reason: 'credential-throttled',
        message: 'too many refused keys from this address; try again later',
        retryAfterMs: wait,
      };
    }
    const decision = this.#check(credential);
    if (decision.kind === 'refused') {
      const retryAfterMs = this.#throttle.failed(address, now);
      return retryAfterMs > 0 ? { ...decision, retryAfterMs } : decision;
    }
    this.#throttle.succeeded(address);
    return decision;
  }

  #check(credential: unknown): AccessDecision {
    const key = parseClientKey(credential);
    if (!key) {
      return { kind: 'refused', reason: 'credential-malformed', message: 'the credential is not an imgcache key' };
    }
    let client = clientByKeyId(this.#registry, key.keyId);
    if (!client && this.#readEventsAfter) {
      try {
        this.catchUp(); // registered since the last look: admitted now, not after the next one
      } catch {
        // the store cannot be read now: the key is judged on what the registry holds
      }
      client = clientByKeyId(this.#registry, key.keyId);
    }
    // Hashed and compared whether or not the key id is known: the time taken does not tell.
    const matches = secretMatches(key.secret, client?.keyHash);
    const claimed = client ? { identity: client.name } : {};
    if (!client || !matches) {
      return { kind: 'refused', reason: 'credential-invalid', message: 'unknown key', ...claimed, keyId: key.keyId };
    }
    if (client.revoked) {
      return {
        kind: 'refused',
        reason: 'credential-revoked',
        message: 'this key was revoked',
        ...claimed,
        keyId: key.keyId,
      };
    }
    const range = tierByName(this.#tiers, client.tier);
    if (!range) {
      const message = `the client's tier '${client.tier}' is not in this server's tier table`;
      return { kind: 'refused', reason: 'credential-invalid', message, ...claimed, keyId: key.keyId };
    }
    return { kind: 'keyed', identity: client.name, range };
  }

  /**
   * [P-60] [P-64] [P-68] The session a decision grants, named `name` with a code in its tier's range (drawn from
   * `code`, a code of 100..999): its identity, and its quota at `wallNow` (ms since the epoch). None in open mode.
   */
  grant(
    decision: AccessDecision,
    name: string,
    code: number,
    wallNow: number,
  ): { identity: SessionIdentity; quota: Quota } | undefined {
    if (decision.kind === 'anonymous') {
      const range = decision.range;
      const identity = { name, code: codeIn(range, code), tier: range.tier, canReadUsage: range.canReadUsage };
      return { identity, quota: { limit: range.quota, used: 0, remaining: range.quota } };
    }
    if (decision.kind !== 'keyed') return undefined;
    const range = decision.range;
    const identity: SessionIdentity = {
      name,
      code: codeIn(range, code),
      tier: range.tier,
      // [P-67] every keyed client may read usage: its own sessions, or everyone's when its tier may
      canReadUsage: true,
      identity: decision.identity,
      usageScope: range.canReadUsage ? 'all' : 'own',
    };
    return { identity, quota: this.quotaOf(decision.identity, wallNow)?.quota ?? sessionQuota(range) };
  }

  /**
   * [P-64] The identity's quota at `wallNow`, and the window the ledger counts it in; null when its quota has no
   * period (each session has the whole quota) or it is not registered.
   */
  quotaOf(identity: string, wallNow: number): { quota: Quota; window: QuotaWindow } | null {
    const client = this.#registry.clients.get(identity);
    const range = client && tierByName(this.#tiers, client.tier);
    if (!range) return null;
    const period = range.period ?? DEFAULT_QUOTA_PERIOD;
    const window = periodWindow(period, wallNow);
    if (!window) return null;
    const used = this.ledger.used(identity, window.start);
    return {
      quota: {
        limit: range.quota,
        used,
        remaining: Math.max(0, range.quota - used),
        period,
        resetsAt: isoTime(window.end),
      },
      window: { identity, start: window.start, limit: range.quota },
    };
  }

  /** [P-64] The identity's current window start at `wallNow` (null: no period), for seeding the ledger. */
  windowStartOf(identity: string, wallNow: number): number | null {
    const client = this.#registry.clients.get(identity);
    const range = client && tierByName(this.#tiers, client.tier);
    if (!range) return null;
    return periodWindow(range.period ?? DEFAULT_QUOTA_PERIOD, wallNow)?.start ?? null;
  }
}

/** A code of the tier's range, drawn from any code of 100..999, so the WELCOME's code still says the tier [P-12]. */
function codeIn(range: TierRange, code: number): number {
  return range.from + (Math.abs(code - 100) % (range.to - range.from + 1));
}

function sessionQuota(range: TierRange): Quota {
  return { limit: range.quota, used: 0, remaining: range.quota, period: 'session', resetsAt: null };
}
