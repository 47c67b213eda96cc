/**
 * [P-86] Registry changes reach every node at once: a `clients` change ends with NOTIFY imgcache_registry
 * (db/postgres/history-store.ts), and each node LISTENs on it on a client of its own
 * (not the pool's: a pooled client is shared, and a LISTEN belongs to one connection). A notification, and every
 * (re)connection (what was missed while the connection was down), tells the node to read the registry. A lost
 * connection is made again, after a pause that grows from `retryMs` up to 8 times it.
 */
import pg from 'pg';
import { REGISTRY_NOTIFY_CHANNEL as REGISTRY_CHANNEL } from './history-store.ts';

export interface RegistryListener {
  /** resolves once the first LISTEN is in place (or its first attempt failed: it keeps trying) */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export interface RegistryListenerOptions {
  url: string;
  /** read the registry now */
  onChange: () => void;
  /** the connection was lost or could not be made (it is tried again) */
  onProblem?: (error: Error) => void;
  retryMs?: number;
}

export function listenForRegistry(options: RegistryListenerOptions): RegistryListener {
  const retryMs = options.retryMs ?? 250;
  let client: pg.Client | null = null;
  let closed = false;
  let failures = 0;
  let retry: NodeJS.Timeout | null = null;

  const again = (error: Error) => {
    options.onProblem?.(error);
    const lost = client;
    client = null;
    lost?.removeAllListeners();
    lost?.on('error', () => undefined);
    lost?.end().catch(() => undefined);
    if (closed || retry) return;
    failures++;
    retry = setTimeout(
      () => {
        retry = null;
        void connect();
      },
      retryMs * Math.min(8, 2 ** (failures - 1)),
    );
    retry.unref();
  };

  async function connect(): Promise<void> {
    if (closed) return;
    const next = new pg.Client({ connectionString: options.url, application_name: 'imgcache registry listener' });
    client = next;
    next.on('error', again);
    next.on('end', () => {
      if (client === next) again(new Error('the registry listener lost its connection'));
    });
    next.on('notification', (message) => {
      if (message.channel === REGISTRY_CHANNEL) options.onChange();
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${REGISTRY_CHANNEL}`);
      if (closed) {
        await next.end();
        return;
      }
      failures = 0;
      options.onChange(); // whatever changed while no one listened
    } catch (error) {
      if (client === next) again(error as Error);
    }
  }

  const ready = connect();
  return {
    ready,
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      const last = client;
      client = null;
      if (last) {
        last.removeAllListeners();
        last.on('error', () => undefined);
        await last.end().catch(() => undefined);
      }
    },
  };
}
