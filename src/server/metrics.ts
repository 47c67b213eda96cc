/**
 * [P-90] The server's metrics, in a prom-client registry of its own (not the global one: two servers in one process,
 * as in the tests, keep apart). The counters are the history's: they count events as they are committed (the events
 * the log is told of), so a count on the operator port never runs ahead of the record. Nothing here runs per request
 * but an increment; gauges are computed when the registry is read.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { NewEvent } from '../../db/events.ts';

/** Seconds: a commit on SQLite takes well under a millisecond to a few (fsync); on PostgreSQL a round trip or more. */
export const COMMIT_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export interface MetricsSources {
  /** sessions admitted and not yet closed on this server */
  sessionsOpen(): number;
  /** events not yet on record: queued, in the commit in flight, held while the history fails */
  eventsWaiting(): number;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #admissions: Counter;
  readonly #rejections: Counter<'reason'>;
  readonly #images: Counter;
  readonly #bytes: Counter;
  readonly #incomplete: Counter;
  readonly #dropped: Counter<'reason'>;
  readonly #closed: Counter<'reason'>;
  readonly #commitSeconds: Histogram;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    new Gauge({
      name: 'imgcache_sessions_open',
      help: 'Sessions admitted and not yet closed on this server',
      registers,
      collect() {
        this.set(sources.sessionsOpen());
      },
    });
    new Gauge({
      name: 'imgcache_history_events_waiting',
      help: 'Events not yet on record: queued for a commit, in the commit in flight, or held while the history fails',
      registers,
      collect() {
        this.set(sources.eventsWaiting());
      },
    });
    this.#admissions = new Counter({
      name: 'imgcache_admissions_total',
      help: 'Sessions admitted (WELCOME), as recorded',
      registers,
    });
    this.#rejections = new Counter({
      name: 'imgcache_rejections_total',
      help: 'Connections rejected (REJECT, or closed for too many handshakes), as recorded, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.#images = new Counter({
      name: 'imgcache_images_served_total',
      help: 'Images served (a get answered with the image), as recorded',
      registers,
    });
    this.#bytes = new Counter({
      name: 'imgcache_bytes_served_total',
      help: 'Bytes of the images served, as announced by each get (a stream cut short counts whole)',
      registers,
    });
    this.#incomplete = new Counter({
      name: 'imgcache_transfers_incomplete_total',
      help: 'Image streams that stopped before their end, as recorded',
      registers,
    });
    this.#dropped = new Counter({
      name: 'imgcache_connections_dropped_total',
      help: 'Connections that went away before their HELLO was answered (or their PROXY header read), as recorded, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.#closed = new Counter({
      name: 'imgcache_sessions_closed_total',
      help: 'Sessions closed, as recorded, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.#commitSeconds = new Histogram({
      name: 'imgcache_history_commit_seconds',
      help: 'Time of one group commit of the history, from handing it over until it is durable',
      buckets: COMMIT_SECONDS_BUCKETS,
      registers,
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /** Counts committed events (the server's log hook hands them over). */
  observe(events: readonly NewEvent[]): void {
    for (const event of events) {
      switch (event.type) {
        case 'session-admitted':
          this.#admissions.inc();
          break;
        case 'connection-rejected':
          this.#rejections.inc({ reason: event.data.reason });
          break;
        case 'image-served':
          this.#images.inc();
          this.#bytes.inc(event.data.bytes);
          break;
        case 'transfer-incomplete':
          this.#incomplete.inc();
          break;
        case 'connection-dropped':
          this.#dropped.inc({ reason: event.data.reason });
          break;
        case 'session-closed':
          this.#closed.inc({ reason: event.data.reason });
          break;
      }
    }
  }

  /** EventLogOptions.onCommitted */
  commitObserved(durationMs: number): void {
    this.#commitSeconds.observe(durationMs / 1_000);
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
