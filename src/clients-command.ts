/**
 * `imgcache-server clients …`: the operator's registry of client identities [P-60]. Each change is an event appended
 * to the history through a connection of its own (a running server need not stop: it sees the change within a
 * second); the registry is the projection of those events. A new key is printed once, on stdout alone, and only its
 * hash is stored.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { clientNameProblem, type RegisteredClient, type Registry } from '../db/client-registry.ts';
import type { HistoryEvent } from '../db/events.ts';
import { isoTime } from '../db/iso-time.ts';
import { openDatabase } from '../db/open-database.ts';
import {
  changeRegistry,
  closesOf,
  identityUsageFromDatabase,
  keyedAdmissions,
  loadRegistry,
} from '../db/registry-store.ts';
import { DEFAULT_QUOTA_PERIOD, periodWindow, type TierTable, tierByName } from '../machines/tiers.ts';
import type { ServerConfig } from './config.ts';
import { newClientKey } from './identity/client-key.ts';

/** A `clients` command that cannot be carried out, said as such (exit status 2 for a usage error, 1 otherwise). */
export class ClientsCommandError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface ClientsOutput {
  out(text: string): void;
  err(text: string): void;
}

export const CLIENTS_HELP = `  imgcache-server clients add <name> --tier <tier>
                                        register a client; prints its key once (only its hash is kept)
  imgcache-server clients list [--json]
                                        the clients: tier, quota used this period, sessions open, last seen, revoked
  imgcache-server clients set-tier <name> <tier>
                                        change a client's tier (its quota follows at once)
  imgcache-server clients rotate <name>
                                        a new key for the client (printed once); the old one stops working
  imgcache-server clients revoke <name>
                                        the client's key stops working; its open sessions are closed`;

export function runClientsCommand(
  args: readonly string[],
  options: { tier?: string; json?: boolean },
  config: Readonly<ServerConfig>,
  output: ClientsOutput,
  now: number = Date.now(),
): void {
  const [action, name, extra] = args;
  const db = openDatabase(config.database, { busyTimeoutMs: 5_000, synchronous: config.historySync });
  try {
    switch (action) {
      case 'add': {
        const tier = checkTier(config.tiers, options.tier);
        const clientName = checkName(name);
        const key = newClientKey();
        change(db, now, (registry) => {
          if (registry.clients.has(clientName)) {
            throw new ClientsCommandError('client-exists', `a client named ${clientName} is already registered`);
          }
          return [
            { type: 'client-registered', data: { name: clientName, tier, keyId: key.keyId, keyHash: key.keyHash } },
          ];
        });
        output.err(
          `registered ${clientName}, tier ${tier}. Its key, shown this once (give it to the client as a file):`,
        );
        output.out(key.key);
        return;
      }
      case 'rotate': {
        const clientName = checkName(name);
        const key = newClientKey();
        change(db, now, (registry) => {
          liveClient(registry, clientName);
          return [{ type: 'client-key-rotated', data: { name: clientName, keyId: key.keyId, keyHash: key.keyHash } }];
        });
        output.err(`new key for ${clientName}; the old one no longer works. The new key, shown this once:`);
        output.out(key.key);
        return;
      }
      case 'set-tier': {
        const clientName = checkName(name);
        const tier = checkTier(config.tiers, extra ?? options.tier);
        change(db, now, (registry) => {
          const client = liveClient(registry, clientName);
          return [{ type: 'client-tier-changed', data: { name: clientName, tier, previousTier: client.tier } }];
        });
        output.out(`${clientName} is now ${tier}`);
        return;
      }
      case 'revoke': {
        const clientName = checkName(name);
        change(db, now, (registry) => {
          liveClient(registry, clientName);
          return [{ type: 'client-revoked', data: { name: clientName } }];
        });
        output.out(`${clientName} is revoked: its key no longer works, and its open sessions are closed`);
        return;
      }
      case 'list': {
        const rows = listClients(db, config.tiers, now);
        if (options.json) output.out(JSON.stringify(rows));
        else output.out(formatClientTable(rows));
        return;
      }
      default:
        throw new ClientsCommandError(
          'bad-usage',
          `clients: expected add, list, revoke, set-tier or rotate\n${CLIENTS_HELP}`,
        );
    }
  } finally {
    db.close();
  }
}

function change(db: BetterSqlite3.Database, now: number, decide: (registry: Registry) => HistoryEvent[]): void {
  changeRegistry(db, decide, now);
}

function checkName(name: string | undefined): string {
  if (name === undefined) throw new ClientsCommandError('bad-usage', 'clients: name the client');
  const problem = clientNameProblem(name);
  if (problem) throw new ClientsCommandError('bad-usage', `clients: '${name}' cannot be a client name: ${problem}`);
  return name;
}

function checkTier(table: TierTable, tier: string | undefined): string {
  const names = [...new Set(table.map((row) => row.tier))];
  if (tier === undefined) throw new ClientsCommandError('bad-usage', `clients: give a tier (${names.join(', ')})`);
  if (!tierByName(table, tier)) {
    throw new ClientsCommandError('bad-usage', `clients: no tier '${tier}' in the tier table (${names.join(', ')})`);
  }
  return tier;
}

function liveClient(registry: Registry, name: string): RegisteredClient {
  const client = registry.clients.get(name);
  if (!client) throw new ClientsCommandError('client-unknown', `no client named ${name} is registered`);
  if (client.revoked) throw new ClientsCommandError('client-revoked', `${name} is revoked`);
  return client;
}

export interface ClientRow {
  name: string;
  tier: string;
  revoked: boolean;
  /** [P-64] images used in the current period, of `limit` */
  used: number;
  limit: number | null;
  period: string;
  /** ISO-8601, or null for a quota that has no period */
  resetsAt: string | null;
  sessionsOpen: number;
  /** ISO-8601: the last admission or close of one of its sessions, or null */
  lastSeen: string | null;
  registeredAt: string;
}

/** The registry with each client's activity: read from the history, as of `now`. */
export function listClients(db: BetterSqlite3.Database, tiers: TierTable, now: number): ClientRow[] {
  const registry = loadRegistry(db);
  const periodOf = (name: string) => {
    const tier = registry.clients.get(name)?.tier;
    return (tier === undefined ? undefined : tierByName(tiers, tier)?.period) ?? DEFAULT_QUOTA_PERIOD;
  };
  const used = identityUsageFromDatabase(db, (name) => periodWindow(periodOf(name), now)?.start ?? null);
  const admissions = keyedAdmissions(db);
  const closes = closesOf(
    db,
    admissions.map((admission) => admission.session),
  );
  const open = new Map<string, number>();
  const lastSeen = new Map<string, number>();
  for (const { session, identity, at } of admissions) {
    const closedAt = closes.get(session);
    if (closedAt === undefined) open.set(identity, (open.get(identity) ?? 0) + 1);
    lastSeen.set(identity, Math.max(lastSeen.get(identity) ?? 0, closedAt ?? at, at));
  }
  return [...registry.clients.values()]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((client) => {
      const period = periodOf(client.name);
      const window = periodWindow(period, now);
      const seen = lastSeen.get(client.name);
      return {
        name: client.name,
        tier: client.tier,
        revoked: client.revoked,
        used: used.get(client.name) ?? 0,
        limit: tierByName(tiers, client.tier)?.quota ?? null,
        period,
        resetsAt: window ? isoTime(window.end) : null,
        sessionsOpen: open.get(client.name) ?? 0,
        lastSeen: seen === undefined ? null : isoTime(seen),
        registeredAt: isoTime(client.registeredAt),
      };
    });
}

function formatClientTable(rows: readonly ClientRow[]): string {
  if (rows.length === 0) return 'no clients registered (imgcache-server clients add <name> --tier <tier>)';
  const table = [
    ['name', 'tier', 'used', 'period', 'resets at', 'open', 'last seen', 'revoked'],
    ...rows.map((row) => [
      row.name,
      row.tier,
      `${row.used}/${row.limit ?? '?'}`,
      row.period,
      row.resetsAt ?? '-',
      String(row.sessionsOpen),
      row.lastSeen ?? 'never',
      row.revoked ? 'revoked' : 'no',
    ]),
  ];
  const widths = table[0]?.map((_, column) => Math.max(...table.map((row) => (row[column] ?? '').length))) ?? [];
  return table
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
