/**
 * The server's options: one defaults object (units in the comments), merged with environment variables and
 * command-line flags, validated once, frozen. `imgcache-server --help` is generated from OPTION_SPECS, so the help
 * text, the environment variables and the defaults cannot drift apart.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TIER_TABLE, type TierTable, validateTierTable } from '../machines/tiers.ts';
import { parseProxySourceList } from './server/proxy-protocol.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The folder of package.json: one up from src/, two up from the compiled dist/src/. */
export const PACKAGE_ROOT = path.resolve(HERE, path.basename(path.dirname(HERE)) === 'dist' ? '../..' : '..');

export interface ServerConfig {
  /** interface to listen on */
  host: string;
  /** TCP port; 0 picks a free one */
  port: number;
  /** folder of images to serve */
  cacheDir: string;
  /**
   * the history: an SQLite file, created on first start, or a PostgreSQL database (a postgres:// or postgresql://
   * URL) that the nodes of a cluster share; `--history`, or the older `--database`
   */
  database: string;
  /** 'normal' (the default): written to the OS at every commit (survives a crash or kill of the server; a power
   * loss or an OS crash may lose the last commits, never the file); 'full': every commit is synced to the disk */
  historySync: 'full' | 'normal';
  /** commit the history on a worker thread, so that the event loop serves while SQLite writes */
  historyThread: boolean;
  /** concurrent sessions admitted (their HELLO in); handshakes in progress hold no slot [P-43] */
  capacity: number;
  /** connections in handshake (no HELLO yet) at once, in all [P-43] */
  maxHandshakes: number;
  /** connections in handshake at once from one address [P-43] */
  maxHandshakesPerAddress: number;
  /** ms a session may be idle before it is closed for a client turned away for capacity [P-44] */
  reclaimIdleAfterMs: number;
  /** tier table: codes to tier, quota and rights */
  tiers: TierTable;
  /** ms a new connection has to complete its HELLO [P-11] */
  handshakeTimeoutMs: number;
  /** ms an admitted session may stay without a request [P-27] */
  idleTimeoutMs: number;
  /** ms a rejected client is told to wait before retrying [P-13] */
  retryAfterMs: number;
  /** ms given to answers in flight when the server stops [P-28] */
  shutdownGraceMs: number;
  /** ms a client may take none of a pending answer before it is cut off (a frozen reader) */
  drainTimeoutMs: number;
  /** bytes: largest frame a client may send after the handshake [P-3] */
  maxRequestBytes: number;
  /** bytes: largest frame the server sends (and so the largest DATA chunk) [P-3] */
  maxFrameBytes: number;
  /** bytes of image content kept in memory; larger catalogs stream the rest from disk */
  memoryBudgetBytes: number;
  /** [P-48] requests that cost no quota a session may make at once, beyond its steady rate (the bucket's size) */
  freeRequestBurst: number;
  /** [P-48] requests that cost no quota a session may make per second, sustained (the bucket's refill rate) */
  freeRequestsPerSecond: number;
  /** ms between two looks at the cache folder for added, changed or removed images [P-37] */
  catalogRescanMs: number;
  /** fixed client codes handed out in turn (demos and tests); empty: cryptographically random codes */
  codes: readonly number[];
  /**
   * [P-60] who may come in: 'open' (anonymous sessions, a random code decides the tier), 'keys' (every client
   * presents a registered key), 'mixed' (keyed clients get their tier, anonymous ones `anonymousTier`)
   */
  access: AccessMode;
  /** [P-60] the tier of anonymous sessions in mixed mode; '' = the tier of the lowest codes */
  anonymousTier: string;
  /** [P-65] sessions one registered identity may hold at once */
  maxSessionsPerIdentity: number;
  /** [P-82] this node's name in a cluster on PostgreSQL; '' = `<hostname>-<pid>-<random>` */
  nodeName: string;
  /** [P-82] ms between two heartbeats of a node in a cluster */
  nodeHeartbeatMs: number;
  /** [P-83] ms without a heartbeat after which the other nodes declare a node lost and close its sessions */
  nodeLostAfterMs: number;
  /** [P-69] PEM file of the server's certificate (chain); with `tlsKey`, clients connect with TLS; '' = plain TCP */
  tlsCert: string;
  /** [P-69] PEM file of the certificate's private key; '' = plain TCP */
  tlsKey: string;
  /** [P-90] TCP port of the operator's HTTP endpoints (GET /health, GET /metrics); 0 picks a free one; null = none */
  operatorPort: number | null;
  /** [P-90] interface the operator port listens on */
  operatorHost: string;
  /** [P-87] addresses and CIDR blocks (the balancers) whose connections begin with a PROXY v2 header; [] = none */
  proxyProtocolFrom: readonly string[];
  /** pino level: fatal, error, warn, info, debug, trace, silent */
  logLevel: string;
  /** 'pretty' for people, 'json' for machines; default: pretty on a terminal, json otherwise */
  logFormat: 'pretty' | 'json';
}

export const DEFAULT_CONFIG: Readonly<ServerConfig> = Object.freeze({
  host: '127.0.0.1',
  port: 7878,
  cacheDir: path.join(PACKAGE_ROOT, 'cache'),
  database: 'imgcache-history.sqlite',
  historySync: 'normal',
  historyThread: false,
  capacity: 3,
  maxHandshakes: 64,
  maxHandshakesPerAddress: 16,
  reclaimIdleAfterMs: 30_000,
  tiers: DEFAULT_TIER_TABLE,
  handshakeTimeoutMs: 5_000,
  idleTimeoutMs: 300_000,
  retryAfterMs: 1_000,
  shutdownGraceMs: 5_000,
  drainTimeoutMs: 15_000,
  maxRequestBytes: 4_096,
  maxFrameBytes: 1_048_576,
  memoryBudgetBytes: 256 * 1_048_576,
  freeRequestBurst: 100,
  freeRequestsPerSecond: 20,
  catalogRescanMs: 1_000,
  codes: [],
  access: 'open',
  anonymousTier: '',
  maxSessionsPerIdentity: 1,
  nodeName: '',
  nodeHeartbeatMs: 1_000,
  nodeLostAfterMs: 5_000,
  tlsCert: '',
  tlsKey: '',
  operatorPort: null,
  operatorHost: '127.0.0.1',
  proxyProtocolFrom: [],
  logLevel: 'info',
  logFormat: process.stdout.isTTY ? 'pretty' : 'json',
});

/** [P-60] */
export type AccessMode = 'open' | 'keys' | 'mixed';

type OptionKind =
  | 'string'
  | 'integer'
  | 'codes'
  | 'tiers'
  | 'format'
  | 'sync'
  | 'switch'
  | 'access'
  | 'level'
  | 'optional-port'
  | 'address-list';

/** pino's levels, the values --log-level takes */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface OptionSpec {
  key: keyof ServerConfig;
  flag: string;
  env: string;
  kind: OptionKind;
  help: string;
  min?: number;
  max?: number;
}

export const OPTION_SPECS: readonly OptionSpec[] = [
  { key: 'host', flag: 'host', env: 'IMGCACHE_HOST', kind: 'string', help: 'interface to listen on' },
  {
    key: 'port',
    flag: 'port',
    env: 'IMGCACHE_PORT',
    kind: 'integer',
    min: 0,
    max: 65_535,
    help: 'TCP port (0: any free port)',
  },
  { key: 'cacheDir', flag: 'cache-dir', env: 'IMGCACHE_CACHE_DIR', kind: 'string', help: 'folder of images to serve' },
  {
    key: 'database',
    flag: 'history',
    env: 'IMGCACHE_HISTORY',
    kind: 'string',
    help: 'the history: an SQLite file, or a postgres://user@host/db URL (password: PGPASSWORD or ~/.pgpass)',
  },
  { key: 'database', flag: 'database', env: 'IMGCACHE_DATABASE', kind: 'string', help: 'older name of --history' },
  {
    key: 'historySync',
    flag: 'history-sync',
    env: 'IMGCACHE_HISTORY_SYNC',
    kind: 'sync',
    help:
      'normal: each commit written to the OS (a crash or kill -9 of the server loses nothing; a power loss or OS ' +
      'crash may lose the last commits); full: synced to the disk (survives a power loss)',
  },
  {
    key: 'historyThread',
    flag: 'history-thread',
    env: 'IMGCACHE_HISTORY_THREAD',
    kind: 'switch',
    help: 'on: commit the history on a worker thread (helps when fsync is slow and clients many); off: on the event loop',
  },
  { key: 'capacity', flag: 'capacity', env: 'IMGCACHE_CAPACITY', kind: 'integer', min: 1, help: 'concurrent sessions' },
  {
    key: 'maxHandshakes',
    flag: 'max-handshakes',
    env: 'IMGCACHE_MAX_HANDSHAKES',
    kind: 'integer',
    min: 1,
    help: 'connections in handshake (no HELLO yet) at once',
  },
  {
    key: 'maxHandshakesPerAddress',
    flag: 'max-handshakes-per-address',
    env: 'IMGCACHE_MAX_HANDSHAKES_PER_ADDRESS',
    kind: 'integer',
    min: 1,
    help: 'connections in handshake at once from one address',
  },
  {
    key: 'reclaimIdleAfterMs',
    flag: 'reclaim-idle-after-ms',
    env: 'IMGCACHE_RECLAIM_IDLE_AFTER_MS',
    kind: 'integer',
    min: 0,
    help: 'ms idle after which a session is closed when a client is turned away for capacity',
  },
  {
    key: 'tiers',
    flag: 'tiers',
    env: 'IMGCACHE_TIERS',
    kind: 'tiers',
    help: 'JSON file with the tier table (default: bronze/silver/gold/platinum)',
  },
  {
    key: 'handshakeTimeoutMs',
    flag: 'handshake-timeout-ms',
    env: 'IMGCACHE_HANDSHAKE_TIMEOUT_MS',
    kind: 'integer',
    min: 1,
    help: 'ms to complete the handshake',
  },
  {
    key: 'idleTimeoutMs',
    flag: 'idle-timeout-ms',
    env: 'IMGCACHE_IDLE_TIMEOUT_MS',
    kind: 'integer',
    min: 1,
    help: 'ms a session may stay idle',
  },
  {
    key: 'retryAfterMs',
    flag: 'retry-after-ms',
    env: 'IMGCACHE_RETRY_AFTER_MS',
    kind: 'integer',
    min: 0,
    help: 'retry hint given to rejected clients, ms',
  },
  {
    key: 'shutdownGraceMs',
    flag: 'shutdown-grace-ms',
    env: 'IMGCACHE_SHUTDOWN_GRACE_MS',
    kind: 'integer',
    min: 0,
    help: 'ms for transfers in flight at shutdown',
  },
  {
    key: 'drainTimeoutMs',
    flag: 'drain-timeout-ms',
    env: 'IMGCACHE_DRAIN_TIMEOUT_MS',
    kind: 'integer',
    min: 1,
    help: 'ms a client may stop reading an answer before it is cut off',
  },
  {
    key: 'maxRequestBytes',
    flag: 'max-request-bytes',
    env: 'IMGCACHE_MAX_REQUEST_BYTES',
    kind: 'integer',
    min: 256,
    help: 'largest client frame after the handshake, bytes',
  },
  {
    key: 'maxFrameBytes',
    flag: 'max-frame-bytes',
    env: 'IMGCACHE_MAX_FRAME_BYTES',
    kind: 'integer',
    min: 4_096,
    help: 'largest server frame, bytes',
  },
  {
    key: 'memoryBudgetBytes',
    flag: 'memory-budget-bytes',
    env: 'IMGCACHE_MEMORY_BUDGET_BYTES',
    kind: 'integer',
    min: 0,
    help: 'image bytes held in memory',
  },
  {
    key: 'freeRequestBurst',
    flag: 'free-request-burst',
    env: 'IMGCACHE_FREE_REQUEST_BURST',
    kind: 'integer',
    min: 1,
    help: 'requests costing no quota a session may make at once, beyond its rate',
  },
  {
    key: 'freeRequestsPerSecond',
    flag: 'free-requests-per-second',
    env: 'IMGCACHE_FREE_REQUESTS_PER_SECOND',
    kind: 'integer',
    min: 1,
    help: 'requests costing no quota a session may make per second, sustained',
  },
  {
    key: 'catalogRescanMs',
    flag: 'catalog-rescan-ms',
    env: 'IMGCACHE_CATALOG_RESCAN_MS',
    kind: 'integer',
    min: 10,
    help: 'ms between looks at the cache folder for changed images',
  },
  {
    key: 'codes',
    flag: 'codes',
    env: 'IMGCACHE_CODES',
    kind: 'codes',
    help: 'comma-separated client codes handed out in turn (default: random)',
  },
  {
    key: 'access',
    flag: 'access',
    env: 'IMGCACHE_ACCESS',
    kind: 'access',
    help: 'open: anonymous sessions, tier by random code; keys: registered keys only; mixed: both',
  },
  {
    key: 'anonymousTier',
    flag: 'anonymous-tier',
    env: 'IMGCACHE_ANONYMOUS_TIER',
    kind: 'string',
    help: "mixed access: anonymous sessions' tier ('': the tier of the lowest codes)",
  },
  {
    key: 'maxSessionsPerIdentity',
    flag: 'max-sessions-per-identity',
    env: 'IMGCACHE_MAX_SESSIONS_PER_IDENTITY',
    kind: 'integer',
    min: 1,
    help: 'sessions one registered client may hold at once',
  },
  {
    key: 'nodeName',
    flag: 'node-name',
    env: 'IMGCACHE_NODE_NAME',
    kind: 'string',
    help: "this node's name in a cluster on PostgreSQL ('': <hostname>-<pid>-<random>)",
  },
  {
    key: 'nodeHeartbeatMs',
    flag: 'node-heartbeat-ms',
    env: 'IMGCACHE_NODE_HEARTBEAT_MS',
    kind: 'integer',
    min: 50,
    help: 'ms between two heartbeats of a node in a cluster',
  },
  {
    key: 'nodeLostAfterMs',
    flag: 'node-lost-after-ms',
    env: 'IMGCACHE_NODE_LOST_AFTER_MS',
    kind: 'integer',
    min: 100,
    help: "ms without a heartbeat before the other nodes close a node's sessions",
  },
  {
    key: 'tlsCert',
    flag: 'tls-cert',
    env: 'IMGCACHE_TLS_CERT',
    kind: 'string',
    help: "PEM certificate (chain) file: with --tls-key, clients must connect with TLS ('': plain TCP)",
  },
  {
    key: 'tlsKey',
    flag: 'tls-key',
    env: 'IMGCACHE_TLS_KEY',
    kind: 'string',
    help: "PEM private key file of --tls-cert ('': plain TCP)",
  },
  {
    key: 'operatorPort',
    flag: 'operator-port',
    env: 'IMGCACHE_OPERATOR_PORT',
    kind: 'optional-port',
    min: 0,
    max: 65_535,
    help: 'HTTP port for GET /health and GET /metrics (0: any free port; off: none)',
  },
  {
    key: 'operatorHost',
    flag: 'operator-host',
    env: 'IMGCACHE_OPERATOR_HOST',
    kind: 'string',
    help: 'interface the operator port listens on',
  },
  {
    key: 'proxyProtocolFrom',
    flag: 'proxy-protocol-from',
    env: 'IMGCACHE_PROXY_PROTOCOL_FROM',
    kind: 'address-list',
    help: 'comma list of balancer addresses or CIDR blocks whose connections begin with a PROXY v2 header',
  },
  { key: 'logLevel', flag: 'log-level', env: 'IMGCACHE_LOG_LEVEL', kind: 'level', help: LOG_LEVELS.join(', ') },
  { key: 'logFormat', flag: 'log-format', env: 'IMGCACHE_LOG_FORMAT', kind: 'format', help: 'pretty or json' },
];

export class ConfigError extends Error {
  readonly code = 'bad-config';
}

function parseInteger(spec: OptionSpec, raw: string): number {
  // Digits only: '' is not 0 (for --port, a random port), and neither ' 80' nor '0x50' nor '8e1' is 80.
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(value) || value < (spec.min ?? 0) || value > max) {
    const range = spec.max === undefined ? `>= ${spec.min ?? 0}` : `from ${spec.min ?? 0} to ${spec.max}`;
    throw new ConfigError(`--${spec.flag} (${spec.env}) must be an integer ${range}, not '${raw}'`);
  }
  return value;
}

function parseCodes(spec: OptionSpec, raw: string): number[] {
  if (raw.trim() === '') return [];
  return raw.split(',').map((part) => {
    const code = Number(part.trim());
    if (!Number.isInteger(code) || code < 100 || code > 999) {
      throw new ConfigError(`--${spec.flag} (${spec.env}) takes codes from 100 to 999, not '${part}'`);
    }
    return code;
  });
}

function loadTierTable(file: string): TierTable {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`cannot read the tier table ${file}: ${(error as Error).message}`);
  }
  try {
    return validateTierTable(raw);
  } catch (error) {
    throw new ConfigError(`bad tier table ${file}: ${(error as Error).message}`);
  }
}

function parseOption(spec: OptionSpec, raw: string): ServerConfig[keyof ServerConfig] {
  switch (spec.kind) {
    case 'integer':
      return parseInteger(spec, raw);
    case 'codes':
      return parseCodes(spec, raw);
    case 'tiers':
      return loadTierTable(raw);
    case 'sync':
      if (raw !== 'full' && raw !== 'normal') throw new ConfigError(`--${spec.flag} takes full or normal`);
      return raw;
    case 'switch':
      if (raw !== 'on' && raw !== 'off') throw new ConfigError(`--${spec.flag} takes on or off`);
      return raw === 'on';
    case 'access':
      if (raw !== 'open' && raw !== 'keys' && raw !== 'mixed')
        throw new ConfigError(`--${spec.flag} takes open, keys or mixed`);
      return raw;
    case 'format':
      if (raw !== 'pretty' && raw !== 'json') throw new ConfigError(`--${spec.flag} takes pretty or json`);
      return raw;
    case 'level':
      if (!(LOG_LEVELS as readonly string[]).includes(raw))
        throw new ConfigError(`--${spec.flag} takes ${LOG_LEVELS.join(', ')}, not '${raw}'`);
      return raw;
    case 'optional-port':
      return raw === 'off' ? null : parseInteger(spec, raw);
    case 'address-list':
      try {
        return parseProxySourceList(raw);
      } catch (error) {
        throw new ConfigError(`--${spec.flag} (${spec.env}): ${(error as Error).message}`);
      }
    case 'string':
      return raw;
  }
}

/**
 * Builds the configuration from raw strings (flags win over the environment, which wins over the defaults) and
 * typed overrides (tests and embedding code).
 */
export function resolveConfig(
  flags: Readonly<Record<string, string | undefined>> = {},
  env: Readonly<Record<string, string | undefined>> = {},
  overrides: Partial<ServerConfig> = {},
): Readonly<ServerConfig> {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  // Two options for one setting (--history and the older --database): a flag of either beats the environment, and
  // where both names are given the first listed (the newer) wins: the specs are read last to first.
  const flagged = new Set(OPTION_SPECS.filter((spec) => flags[spec.flag] !== undefined).map((spec) => spec.key));
  for (const spec of [...OPTION_SPECS].reverse()) {
    const raw = flags[spec.flag] ?? (flagged.has(spec.key) ? undefined : env[spec.env]);
    if (raw !== undefined) config[spec.key] = parseOption(spec, raw);
  }
  Object.assign(config, overrides);
  const resolved = config as unknown as ServerConfig;
  if (resolved.maxRequestBytes > resolved.maxFrameBytes) {
    throw new ConfigError('--max-request-bytes cannot exceed --max-frame-bytes');
  }
  if (resolved.anonymousTier !== '' && !resolved.tiers.some((row) => row.tier === resolved.anonymousTier)) {
    throw new ConfigError(`--anonymous-tier: no tier '${resolved.anonymousTier}' in the tier table`);
  }
  // [P-83] A node alive is never taken for lost: at least two heartbeats fit in the time that declares it lost.
  if (resolved.nodeLostAfterMs < 2 * resolved.nodeHeartbeatMs) {
    throw new ConfigError('--node-lost-after-ms must be at least twice --node-heartbeat-ms');
  }
  checkTlsFiles(resolved);
  return Object.freeze({
    ...resolved,
    codes: Object.freeze([...resolved.codes]),
    proxyProtocolFrom: Object.freeze([...resolved.proxyProtocolFrom]),
  });
}

/** [P-69] TLS takes both files: one without the other is a mistake, not plain TCP. */
function checkTlsFiles(config: ServerConfig): void {
  if ((config.tlsCert === '') !== (config.tlsKey === '')) {
    throw new ConfigError('--tls-cert and --tls-key go together: give both (TLS) or neither (plain TCP)');
  }
}

/** [P-69] Whether the server's clients connect with TLS. */
export function tlsEnabled(config: Pick<ServerConfig, 'tlsCert' | 'tlsKey'>): boolean {
  return config.tlsCert !== '' && config.tlsKey !== '';
}

/** A default as the help says it: a switch on or off, an option that is off, an empty list as none. */
function describeDefault(key: keyof ServerConfig): string {
  const value = DEFAULT_CONFIG[key];
  if (key === 'tiers') return 'built-in';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (value === null) return 'off';
  if (Array.isArray(value) && value.length === 0) return 'none';
  return JSON.stringify(value);
}

export function describeOptions(): string {
  const rows = OPTION_SPECS.map((spec) => {
    const fallback = describeDefault(spec.key);
    return `  --${spec.flag.padEnd(22)} ${spec.help}\n  ${' '.repeat(24)} default ${fallback}; env ${spec.env}`;
  });
  return rows.join('\n');
}
