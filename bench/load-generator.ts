/**
 * The load generator: `connections` clients on loopback, each with one request in flight, sending the next request
 * as soon as the previous answer's last byte is in, for a warm-up and then a measured window. Lean on purpose: reads
 * land in one reused buffer (`onread`: no allocation and no stream machinery per read), bodies are counted and never
 * copied, requests are pre-encoded, latencies go into a preallocated array.
 *
 * Bounded: the run ends `warmupMs + durationMs` after it starts, answers still in flight get `drainMs` more, and a
 * client reconnects at most `maxReconnects` times in all.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { LatencySamples, type LatencySummary } from './latency-samples.ts';
import { createDialect, type WireDialect, type WireProtocol } from './wire-dialects.ts';

export interface LoadOptions {
  host?: string;
  port: number;
  protocol: WireProtocol;
  /** the image: its name (imgcache, bare) or its URL path (http) */
  target: string;
  /** the image's size in bytes: every answer is checked against it */
  expectedBytes: number;
  connections: number;
  /** ms of load before the measured window (connections and handshakes happen here) */
  warmupMs: number;
  /** ms of the measured window */
  durationMs: number;
  /** ms that answers in flight at the end of the window may take to finish (default 10 s) */
  drainMs?: number;
  /** reconnections allowed over the whole run (default 1,000 per connection) */
  maxReconnects?: number;
  /** latency samples kept (default 4 M) */
  maxSamples?: number;
  /** called synchronously as the measured window opens and closes (snapshots of the server's counters) */
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
}

export interface LoadResult {
  protocol: WireProtocol;
  connections: number;
  /** the measured window, in seconds */
  seconds: number;
  /** answers completed inside the window */
  requests: number;
  /** body bytes of those answers */
  bodyBytes: number;
  requestsPerSecond: number;
  /** body bytes per second / 10^6 */
  megabytesPerSecond: number;
  /** latency of the answers inside the window, from the request's write to the answer's last byte */
  latencyMs: LatencySummary;
  /** failed answers and socket errors over the whole run */
  errors: number;
  firstErrors: string[];
  /** sessions replaced by a new connection over the whole run */
  reconnects: number;
  /** CPU time of the generator's process during the window, ms (user + system) */
  generatorCpuMs: number;
  /** the kept latency samples, ms (merged across threads by the caller) */
  samples: Float64Array;
}

const DEFAULT_DRAIN_MS = 10_000;
const READ_BUFFER_BYTES = 1024 * 1024;
/** a client turned away (REJECT server-full) waits this long before trying again */
const RETRY_AFTER_REJECT_MS = 20;
const KEPT_ERRORS = 5;

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new LoadRun(options).run();
}

class LoadRun {
  readonly options: LoadOptions;
  readonly dialect: WireDialect;
  /** every connection reads into this one buffer: each read is consumed before the next one lands */
  readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  readonly samples: LatencySamples;
  readonly clients: LoadClient[] = [];
  measuring = false;
  stopped = false;
  requests = 0;
  bodyBytes = 0;
  errors = 0;
  firstErrors: string[] = [];
  reconnects = 0;
  reconnectBudget: number;
  #allClosed: (() => void) | null = null;

  constructor(options: LoadOptions) {
    this.options = options;
    this.dialect = createDialect(options.protocol, options.target);
    this.samples = new LatencySamples(options.maxSamples ?? 4 * 1024 * 1024);
    this.reconnectBudget = options.maxReconnects ?? options.connections * 1000;
  }

  async run(): Promise<LoadResult> {
    const { warmupMs, durationMs } = this.options;
    for (let index = 0; index < this.options.connections; index++) {
      const client = new LoadClient(this);
      this.clients.push(client);
      client.open();
    }
    await delay(warmupMs);
    this.options.onWindowStart?.();
    const cpuBefore = process.cpuUsage();
    const startedAt = performance.now();
    this.measuring = true;
    await delay(durationMs);
    this.measuring = false;
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    this.options.onWindowEnd?.();
    await this.#stop();
    return {
      protocol: this.options.protocol,
      connections: this.options.connections,
      seconds,
      requests: this.requests,
      bodyBytes: this.bodyBytes,
      requestsPerSecond: this.requests / seconds,
      megabytesPerSecond: this.bodyBytes / 1e6 / seconds,
      latencyMs: this.samples.summary(),
      errors: this.errors,
      firstErrors: this.firstErrors,
      reconnects: this.reconnects,
      generatorCpuMs: (cpu.user + cpu.system) / 1000,
      samples: this.samples.values(),
    };
  }

  /** Idle clients close now, busy ones after their answer; whatever is left after drainMs is destroyed. */
  async #stop(): Promise<void> {
    this.stopped = true;
    const closed = new Promise<void>((resolve) => {
      this.#allClosed = resolve;
    });
    for (const client of this.clients) client.stopWhenIdle();
    this.checkAllClosed();
    const timer = setTimeout(() => {
      for (const client of this.clients) client.destroy();
      this.checkAllClosed();
    }, this.options.drainMs ?? DEFAULT_DRAIN_MS);
    await closed;
    clearTimeout(timer);
  }

  checkAllClosed(): void {
    if (this.#allClosed && this.clients.every((client) => client.closed)) this.#allClosed();
  }

  recordAnswer(latencyMs: number, bodyBytes: number): void {
    if (bodyBytes !== this.options.expectedBytes) {
      this.recordError(`an answer of ${bodyBytes} bytes, expected ${this.options.expectedBytes}`);
    }
    if (!this.measuring) return;
    this.requests++;
    this.bodyBytes += bodyBytes;
    this.samples.add(latencyMs);
  }

  recordError(message: string): void {
    this.errors++;
    if (this.firstErrors.length < KEPT_ERRORS) this.firstErrors.push(message);
  }

  /** Takes one reconnection from the budget; false when it is spent. */
  mayReconnect(): boolean {
    if (this.stopped || this.reconnectBudget <= 0) return false;
    this.reconnectBudget--;
    this.reconnects++;
    return true;
  }
}

class LoadClient {
  readonly #run: LoadRun;
  #socket: net.Socket | null = null;
  #sentAt = 0;
  /** the request in flight, for its receipt [P-40] */
  #request: Buffer | null = null;
  #busy = false;
  #retryTimer: NodeJS.Timeout | null = null;
  /** bumped on every (re)connection: events of a replaced connection's reader are ignored */
  #generation = 0;
  closed = false;

  constructor(run: LoadRun) {
    this.#run = run;
  }

  open(): void {
    const run = this.#run;
    const generation = ++this.#generation;
    const current = () => generation === this.#generation;
    const reader = run.dialect.createReader({
      ready: () => {
        if (current()) this.#sendNext();
      },
      answered: (bodyBytes) => {
        if (current()) this.#answered(bodyBytes);
      },
      sessionOver: (reason, retry) => {
        if (current()) this.#sessionOver(reason, retry);
      },
      failed: (message) => {
        if (current()) run.recordError(message);
      },
    });
    this.#busy = false;
    const socket = net.connect({
      host: run.options.host ?? '127.0.0.1',
      port: run.options.port,
      noDelay: true,
      onread: {
        buffer: run.readBuffer,
        callback: (bytes: number, buffer: Uint8Array) => {
          try {
            reader.push(buffer as Buffer, 0, bytes);
          } catch (error) {
            run.recordError((error as Error).message);
            this.#sessionOver('unreadable answer', true);
          }
          return true;
        },
      },
    });
    this.#socket = socket;
    socket.on('connect', () => {
      const greeting = run.dialect.greeting;
      if (greeting) socket.write(greeting);
      else this.#sendNext();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => run.recordError(`socket: ${error.code ?? error.message}`));
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      if (!run.stopped && run.mayReconnect()) this.open();
      else this.#markClosed();
    });
  }

  #sendNext(): void {
    const socket = this.#socket;
    if (this.#run.stopped || socket === null) {
      this.stopWhenIdle();
      return;
    }
    this.#busy = true;
    this.#sentAt = performance.now();
    const request = this.#run.dialect.nextRequest();
    this.#request = request;
    socket.write(request);
  }

  #answered(bodyBytes: number): void {
    this.#busy = false;
    this.#run.recordAnswer(performance.now() - this.#sentAt, bodyBytes);
    // [P-40] The answer was read whole: its receipt goes out with the next request, in one writev.
    const receipt = this.#request && this.#run.dialect.receiptFor(this.#request);
    this.#request = null;
    const socket = this.#socket;
    if (receipt && socket) {
      socket.cork();
      socket.write(receipt);
      this.#sendNext();
      socket.uncork();
      return;
    }
    this.#sendNext();
  }

  /** The server ended the session: a new connection takes its place (after a pause if it was turned away). */
  #sessionOver(reason: string, retry: boolean): void {
    const run = this.#run;
    const socket = this.#socket;
    this.#socket = null;
    this.#busy = false;
    this.#generation++;
    socket?.destroy();
    if (run.stopped || !run.mayReconnect()) {
      if (!run.stopped) run.recordError(`session over (${reason}) and no reconnection left`);
      this.#markClosed();
      return;
    }
    if (retry) {
      this.open();
      return;
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (run.stopped) this.#markClosed();
      else this.open();
    }, RETRY_AFTER_REJECT_MS);
  }

  stopWhenIdle(): void {
    if (this.#busy) return;
    this.destroy();
  }

  destroy(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const socket = this.#socket;
    this.#socket = null;
    socket?.destroy();
    this.#markClosed();
  }

  #markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.#run.checkAllClosed();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
