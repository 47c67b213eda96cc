/**
 * [P-90] The operator port: a small HTTP server, apart from the clients' port, for the balancer and the monitoring.
 * GET /health answers 200 `{"status":"up"}` while the node can record, 503 `{"status":"down","reason":…}` while it
 * cannot (the history fails) or is stopping, so that a balancer's check (HAProxy `option httpchk`) sends clients
 * elsewhere; GET /metrics answers the Prometheus text format. Anything else is 404, any method but GET (or HEAD) 405.
 */
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import type { HistoryHealth } from '../../db/event-log.ts';

/** [P-90] Why a node says it is down. */
export type DownReason = 'history-unavailable' | 'shutting-down' | (string & {});

/** [P-90] The body of /health; `node` is the node's name in a cluster (absent on a server alone). */
export type NodeHealth = ({ status: 'up' } | { status: 'down'; reason: DownReason }) & { node?: string };

export interface OperatorPortOptions {
  host: string;
  /** 0: any free port */
  port: number;
  health(): NodeHealth;
  /** the Prometheus text, and its content type */
  metrics(): Promise<string>;
  metricsContentType: string;
  /** told of a failure to build an answer (the answer is a 500) */
  onError(error: unknown): void;
}

export interface OperatorPort {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * Bounds of the operator port, which balancers and scrapers use a few connections of: at most this many connections
 * at once (more are closed as they come), and a request's headers within HEADERS_TIMEOUT_MS, the whole request within
 * REQUEST_TIMEOUT_MS (looked at every CHECK_MS), so slow or idle half-requests cannot pile up file descriptors.
 */
export const OPERATOR_MAX_CONNECTIONS = 64;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
const CHECK_MS = 1_000;

/** Starts the operator port; resolves once it listens (rejects if it cannot, e.g. the port is taken). */
export async function startOperatorPort(options: OperatorPortOptions): Promise<OperatorPort> {
  const limits = {
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: CHECK_MS,
  };
  const server = http.createServer(limits, (request, response) => {
    answer(request, response, options).catch((error: unknown) => {
      options.onError(error);
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else response.destroy();
    });
  });
  // Keep-alive checks every second or two from a balancer: their sockets are closed at stop, not waited for.
  server.keepAliveTimeout = 5_000;
  server.maxConnections = OPERATOR_MAX_CONNECTIONS;
  server.listen(options.port, options.host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]) => Promise.reject(error as Error)),
  ]);
  const bound = server.address() as net.AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: async () => {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

async function answer(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  options: OperatorPortOptions,
): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/health' && path !== '/metrics') {
    send(response, 404, 'text/plain; charset=utf-8', 'not found: GET /health or GET /metrics\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    send(response, 405, 'text/plain; charset=utf-8', 'method not allowed: GET\n');
    return;
  }
  if (path === '/health') {
    const health = options.health();
    send(response, health.status === 'up' ? 200 : 503, 'application/json', `${JSON.stringify(health)}\n`);
    return;
  }
  send(response, 200, options.metricsContentType, await options.metrics());
}

function send(response: http.ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/** ms after a failed commit during which the history is taken as failing even with nothing left to retry */
export const FAILURE_REMEMBERED_MS = 1_000;

/**
 * [P-90] The history's side of the health (EventLogOptions.onHealth tells it of each failed commit and of the
 * recovery): failing from a failed commit until one succeeds again. The facts held meanwhile are retried on a timer,
 * so a history that comes back is seen without any client. A failure that left nothing to retry (only an answer's
 * events, which are discarded) is forgotten after FAILURE_REMEMBERED_MS: the node reports itself up and the next
 * record says again, rather than staying down with nothing that could ever tell it otherwise.
 */
export function historyHealthTracker(now: () => number = () => performance.now()): {
  observe(health: HistoryHealth): void;
  failing(eventsWaiting: number): boolean;
} {
  let failedAt: number | null = null;
  return {
    observe: (health) => {
      failedAt = health.kind === 'failed' ? now() : null;
    },
    failing: (eventsWaiting) => failedAt !== null && (eventsWaiting > 0 || now() - failedAt < FAILURE_REMEMBERED_MS),
  };
}

/**
 * [P-90] A check that fails again and again while something is out of reach (a cluster node's heartbeat, every
 * `--node-heartbeat-ms`): failing while the last failure is younger than `windowMs`. It lets an idle node, which
 * commits nothing, see that its history's server is gone, and see it back once the failures stop.
 */
export function repeatedCheckTracker(
  windowMs: number,
  now: () => number = () => performance.now(),
): { failed(): void; failing(): boolean } {
  let failedAt: number | null = null;
  return {
    failed: () => {
      failedAt = now();
    },
    failing: () => failedAt !== null && now() - failedAt < windowMs,
  };
}
