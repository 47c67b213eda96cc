/**
 * [P-60] The registry of client identities, a pure projection of the history's registry events (client-registered,
 * client-key-rotated, client-tier-changed, client-revoked). Nothing here knows where the events are stored: the
 * server and the `clients` commands feed it events read from SQLite (db/registry-store.ts), a shared store later
 * just the same. Apply events in position order; applying one twice is harmless (each carries a whole state).
 */
import type { StoredEvent } from './events.ts';

export const REGISTRY_EVENT_TYPES = [
  'client-registered',
  'client-key-rotated',
  'client-tier-changed',
  'client-revoked',
] as const;
export type RegistryEventType = (typeof REGISTRY_EVENT_TYPES)[number];
export type RegistryEvent = Extract<StoredEvent, { type: RegistryEventType }>;

export interface RegisteredClient {
  readonly name: string;
  readonly tier: string;
  /** the current key's id; earlier keys (rotated away) are no longer known */
  readonly keyId: string;
  /** the SHA-256 of the current key's secret, hex */
  readonly keyHash: string;
  readonly revoked: boolean;
  /** ms since the epoch */
  readonly registeredAt: number;
  /** ms since the epoch: the last registry event about this client */
  readonly changedAt: number;
}

export interface Registry {
  readonly clients: Map<string, RegisteredClient>;
  /** key id -> client name, for the current key of each client (revoked ones included) */
  readonly byKeyId: Map<string, string>;
  /** the position of the last registry event applied (0: none) */
  position: number;
}

export function emptyRegistry(): Registry {
  return { clients: new Map(), byKeyId: new Map(), position: 0 };
}

export function isRegistryEvent(event: StoredEvent): event is RegistryEvent {
  return (REGISTRY_EVENT_TYPES as readonly string[]).includes(event.type);
}

/** What an event changed, for the server to act on (close a revoked identity's sessions, re-read a tier). */
export type RegistryChange =
  | { kind: 'registered' | 'rotated' | 'tier-changed' | 'revoked'; name: string }
  | { kind: 'ignored'; name: string };

/** Applies one registry event in place (other events are ignored); returns what changed. */
export function applyRegistryEvent(registry: Registry, event: StoredEvent): RegistryChange | null {
  if (!isRegistryEvent(event)) return null;
  registry.position = Math.max(registry.position, event.position);
  const { name } = event.data;
  const current = registry.clients.get(name);
  switch (event.type) {
    case 'client-registered': {
      if (current) return { kind: 'ignored', name };
      const { tier, keyId, keyHash } = event.data;
      registry.clients.set(name, {
        name,
        tier,
        keyId,
        keyHash,
        revoked: false,
        registeredAt: event.at,
        changedAt: event.at,
      });
      registry.byKeyId.set(keyId, name);
      return { kind: 'registered', name };
    }
    case 'client-key-rotated': {
      if (!current || current.revoked) return { kind: 'ignored', name };
      registry.byKeyId.delete(current.keyId);
      registry.byKeyId.set(event.data.keyId, name);
      registry.clients.set(name, {
        ...current,
        keyId: event.data.keyId,
        keyHash: event.data.keyHash,
        changedAt: event.at,
      });
      return { kind: 'rotated', name };
    }
    case 'client-tier-changed': {
      if (!current || current.revoked) return { kind: 'ignored', name };
      registry.clients.set(name, { ...current, tier: event.data.tier, changedAt: event.at });
      return { kind: 'tier-changed', name };
    }
    case 'client-revoked': {
      if (!current || current.revoked) return { kind: 'ignored', name };
      registry.clients.set(name, { ...current, revoked: true, changedAt: event.at });
      return { kind: 'revoked', name };
    }
  }
}

/** The registry as the events build it, in order. */
export function projectRegistry(events: Iterable<StoredEvent>, registry: Registry = emptyRegistry()): Registry {
  for (const event of events) applyRegistryEvent(registry, event);
  return registry;
}

/** The client whose current key has this id, if any. */
export function clientByKeyId(registry: Registry, keyId: string): RegisteredClient | undefined {
  const name = registry.byKeyId.get(keyId);
  return name === undefined ? undefined : registry.clients.get(name);
}

/**
 * [P-60] A client name: 1 to 64 characters, lowercase letters, digits, `.`, `_` and `-`, starting with a letter or a
 * digit. Plain enough for a log line, a file name or a shell argument, and never a session name (`client-<n>`).
 */
const CLIENT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SESSION_NAME = /^client-[0-9]+$/;

/** Why a name cannot be a client's, or null when it can. */
export function clientNameProblem(name: string): string | null {
  if (!CLIENT_NAME.test(name)) {
    return 'a client name is 1 to 64 of a-z, 0-9, ".", "_", "-", starting with a letter or a digit';
  }
  if (SESSION_NAME.test(name)) return 'client-<n> names are the names of sessions';
  return null;
}
