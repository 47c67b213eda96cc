/**
 * `imgcache-server clients …`: the operator's registry of client identities [P-60]. Each change is an event appended
 * to the history through a connection of its own (a running server need not stop: it sees the change within a
 * second); the registry is the projection of those events. A new key is printed once, on stdout alone, and only its
 * hash is stored.
 */
import { existsSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import { clientNameProblem, type RegisteredClient, type Registry } from '../db/client-registry.ts';
import type { HistoryEvent } from '../db/events.ts';
import { isoTime } from '../db/iso-time.ts';
import { openDatabase } from '../db/open-database.ts';
import * as pgStore from '../db/postgres/history-store.ts';
import { isPostgresUrl } from '../db/postgres/pool.ts';
import { openHistoryPool } from '../db/postgres/schema.ts';
import {
  changeRegistry,
  closesOf,
  identityUsageFromDatabase,
  keyedAdmissions,
  loadRegistry,
} from '../db/registry-store.ts';
import {
  DEFAULT_QUOTA_PERIOD,
  DEFAULT_TIER_TABLE,
  periodWindow,
  type QuotaPeriod,
  type TierTable,
  tierByName,
} from '../machines/tiers.ts';
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
  imgcache-server clients list [--json] [--tiers F]
                                        the clients: tier, quota used this period, sessions open, last seen, revoked;
                                        limits from --tiers F (give the server's), else from the built-in table
  imgcache-server clients set-tier <name> <tier>
                                        change a client's tier (its quota follows at once)
  imgcache-server clients rotate <name>
                                        a new key for the client (printed once); running servers refuse the old one
                                        within a second
  imgcache-server clients revoke <name>
                                        the client's key stops working; its open sessions are closed`;

/** What a `clients` command does, decided before the history is opened: a change of the registry, or the list. */
type ClientsAction =
  | {
      kind: 'change';
      /** whether the command may create the history (`add`: clients are registered before the first start) */
      createsHistory: boolean;
      /** what to append, given the registry read under the lock (throws to refuse) */
      decide: (registry: Registry) => HistoryEvent[];
      /** what to print once it is on record */
      report: (output: ClientsOutput) => void;
    }
  | { kind: 'list'; json: boolean };

function clientsAction(
  args: readonly string[],
  options: { tier?: string; json?: boolean },
  config: Readonly<ServerConfig>,
): ClientsAction {
  const [action, name, extra] = args;
  switch (action) {
    case 'add': {
      const tier = checkTier(config.tiers, options.tier);
      const clientName = checkName(name);
      const key = newClientKey();
      return {
        kind: 'change',
        createsHistory: true,
        decide: (registry) => {
          const existing = registry.clients.get(clientName);
          if (existing?.revoked) {
            // A name is never given again: its history (sessions, usage) stays that client's.
            throw new ClientsCommandError(
              'client-exists',
              `a client named ${quoted(clientName)} was registered and revoked; a name is never registered again: ` +
                'register the client under a new name',
            );
          }
          if (existing) {
            throw new ClientsCommandError(
              'client-exists',
              `a client named ${quoted(clientName)} is already registered`,
            );
          }
          return [
            { type: 'client-registered', data: { name: clientName, tier, keyId: key.keyId, keyHash: key.keyHash } },
          ];
        },
        report: (output) => {
          output.err(
            `registered ${clientName}, tier ${tier}. Its key, shown this once (give it to the client as a file):`,
          );
          output.out(key.key);
        },
      };
    }
    case 'rotate': {
      const clientName = checkName(name);
      const key = newClientKey();
      return {
        kind: 'change',
        createsHistory: false,
        decide: (registry) => {
          liveClient(registry, clientName);
          return [{ type: 'client-key-rotated', data: { name: clientName, keyId: key.keyId, keyHash: key.keyHash } }];
        },
        report: (output) => {
          // [P-66] A running server refuses the old key once it has seen the change (it looks every 250 ms, a
          // cluster within a second); sessions already open with it go on.
          output.err(
            `new key for ${clientName}: running servers stop taking the old one within a second (sessions already ` +
              'open with it go on). The new key, shown this once:',
          );
          output.out(key.key);
        },
      };
    }
    case 'set-tier': {
      const clientName = checkName(name);
      const tier = checkTier(config.tiers, extra ?? options.tier);
      return {
        kind: 'change',
        createsHistory: false,
        decide: (registry) => {
          const client = liveClient(registry, clientName);
          return [{ type: 'client-tier-changed', data: { name: clientName, tier, previousTier: client.tier } }];
        },
        report: (output) => output.out(`${clientName} is now ${tier}`),
      };
    }
    case 'revoke': {
      const clientName = checkName(name);
      return {
        kind: 'change',
        createsHistory: false,
        decide: (registry) => {
          liveClient(registry, clientName);
          return [{ type: 'client-revoked', data: { name: clientName } }];
        },
        report: (output) =>
          output.out(
            `${clientName} is revoked: running servers refuse its key and close its open sessions within a second`,
          ),
      };
    }
    case 'list':
      return { kind: 'list', json: options.json === true };
    default:
      throw new ClientsCommandError(
        'bad-usage',
        `clients: expected add, list, revoke, set-tier or rotate\n${CLIENTS_HELP}`,
      );
  }
}

/** The command on an SQLite history file: synchronous, on a connection of its own. */
export function runClientsCommand(
  args: readonly string[],
  options: { tier?: string; json?: boolean },
  config: Readonly<ServerConfig>,
  output: ClientsOutput,
  now: number = Date.now(),
): void {
  const action = clientsAction(args, options, config);
  if (!(action.kind === 'change' && action.createsHistory)) requireHistory(config.database, args[0] ?? '');
  const db = openDatabase(config.database, { busyTimeoutMs: 5_000, synchronous: config.historySync });
  try {
    if (action.kind === 'change') {
      changeRegistry(db, action.decide, now);
      action.report(output);
    } else printList(listClients(db, config.tiers, now), action.json, config.tiers, output);
  } finally {
    db.close();
  }
}

/**
 * The command on any history: a PostgreSQL one (a postgres:// URL) through a connection of its own, where a change
 * is announced to every running node at once [P-66]; a file as runClientsCommand.
 */
export async function runClientsCommandOn(
  args: readonly string[],
  options: { tier?: string; json?: boolean },
  config: Readonly<ServerConfig>,
  output: ClientsOutput,
  now: number = Date.now(),
): Promise<void> {
  if (!isPostgresUrl(config.database)) {
    runClientsCommand(args, options, config, output, now);
    return;
  }
  const action = clientsAction(args, options, config);
  const pool = await openHistoryPool(config.database, { max: 1 });
  try {
    if (action.kind === 'change') {
      await pgStore.changeRegistry(pool, action.decide, now);
      action.report(output);
    } else {
      const registry = await pgStore.loadRegistry(pool);
      const admissions = await pgStore.keyedAdmissions(pool);
      const activity: ClientActivity = {
        registry,
        used: await pgStore.identityUsage(pool, usageWindows(registry, config.tiers, now)),
        admissions,
        closes: await pgStore.closesOf(
          pool,
          admissions.map((admission) => admission.session),
        ),
      };
      printList(clientRows(activity, config.tiers, now), action.json, config.tiers, output);
    }
  } finally {
    await pool.end();
  }
}

/**
 * A name, tier or path as an error message shows it: in double quotes, every control character escaped as JSON does
 * (and C1 controls, DEL, line and paragraph separators, bidirectional overrides, which JSON leaves raw), so what the
 * operator typed cannot move the cursor, retitle the terminal or reorder the line.
 */
export function quoted(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Only `add` creates a history: the other commands read the clients of an existing one, so a path mistyped is said as
 * such, not answered from a new empty history (which would be left behind).
 */
function requireHistory(file: string, command: string): void {
  if (file === ':memory:' || file.startsWith('file:') || existsSync(file)) return;
  throw new ClientsCommandError(
    'history-not-found',
    `clients ${command}: no history at ${quoted(file)} (check --history; only clients add creates one)`,
  );
}

function printList(rows: readonly ClientRow[], json: boolean, tiers: TierTable, output: ClientsOutput): void {
  if (json) output.out(JSON.stringify(rows));
  else output.out(formatClientTable(rows));
  // The history does not record the tier table a server started with: figures from the built-in one are said to be.
  if (rows.length > 0 && tiers === DEFAULT_TIER_TABLE) {
    output.err(
      'limits and periods as the built-in tier table gives them; a server started with --tiers F (or IMGCACHE_TIERS)\n' +
        'counts by its own table: give the same --tiers F here to see its figures',
    );
  }
}

/** The table the tiers are checked against, as an error names it. */
function tableName(tiers: TierTable): string {
  return tiers === DEFAULT_TIER_TABLE
    ? 'the built-in tier table (a server started with --tiers F: give the same --tiers F here)'
    : 'the tier table given';
}

function checkName(name: string | undefined): string {
  if (name === undefined) throw new ClientsCommandError('bad-usage', 'clients: name the client');
  const problem = clientNameProblem(name);
  if (problem)
    throw new ClientsCommandError('bad-usage', `clients: ${quoted(name)} cannot be a client name: ${problem}`);
  return name;
}

function checkTier(table: TierTable, tier: string | undefined): string {
  const names = [...new Set(table.map((row) => row.tier))];
  if (tier === undefined) throw new ClientsCommandError('bad-usage', `clients: give a tier (${names.join(', ')})`);
  if (!tierByName(table, tier)) {
    throw new ClientsCommandError(
      'bad-usage',
      `clients: no tier ${quoted(tier)} in ${tableName(table)}: ${names.join(', ')}`,
    );
  }
  return tier;
}

function liveClient(registry: Registry, name: string): RegisteredClient {
  const client = registry.clients.get(name);
  if (!client) throw new ClientsCommandError('client-unknown', `no client named ${quoted(name)} is registered`);
  if (client.revoked) {
    throw new ClientsCommandError(
      'client-revoked',
      `${quoted(name)} is revoked, for good: register the client under a new name (clients add <name> --tier <tier>)`,
    );
  }
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

/** What the list is made of, read from a history. */
interface ClientActivity {
  registry: Registry;
  /** [P-64] images used by each identity in its current window */
  used: Map<string, number>;
  admissions: ReadonlyArray<{ session: number; identity: string; at: number }>;
  /** the time of each closed session's close */
  closes: Map<number, number>;
}

/** [P-64] The start of each identity's current window, by its tier's period. */
function usageWindows(registry: Registry, tiers: TierTable, now: number): (name: string) => number | null {
  return (name) => periodWindow(periodOfClient(registry, tiers, name), now)?.start ?? null;
}

function periodOfClient(registry: Registry, tiers: TierTable, name: string): QuotaPeriod {
  const tier = registry.clients.get(name)?.tier;
  return (tier === undefined ? undefined : tierByName(tiers, tier)?.period) ?? DEFAULT_QUOTA_PERIOD;
}

/** The registry with each client's activity: read from the history file, as of `now`. */
export function listClients(db: BetterSqlite3.Database, tiers: TierTable, now: number): ClientRow[] {
  const registry = loadRegistry(db);
  const admissions = keyedAdmissions(db);
  const activity: ClientActivity = {
    registry,
    used: identityUsageFromDatabase(db, usageWindows(registry, tiers, now)),
    admissions,
    closes: closesOf(
      db,
      admissions.map((admission) => admission.session),
    ),
  };
  return clientRows(activity, tiers, now);
}

/** The rows of the list, from the registry and the activity of its clients' sessions. */
function clientRows(activity: ClientActivity, tiers: TierTable, now: number): ClientRow[] {
  const { registry, used, admissions, closes } = activity;
  const periodOf = (name: string) => periodOfClient(registry, tiers, name);
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
