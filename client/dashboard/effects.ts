/**
 * Carries out the reducer's effects with the real parts (the client library, the local cache, the file system, the
 * PNG decoder) and reports each result back as an event. Every failure becomes a `request-failed` event with plain
 * data, never an exception that could reach the terminal.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConnectionClosedError, parseUsageDocument, ServerError } from '../../src/protocol/index.ts';
import type { ImgcacheClient } from '../imgcache-client.ts';
import type { LocalCache } from '../local-cache.ts';
import { type DecodedImage, decodePng } from './png-decoder.ts';
import type { DashboardEvent, Effect, Failure, SavedImage } from './view-state.types.ts';

export interface EffectContext {
  client: ImgcacheClient;
  cache: LocalCache;
  /** where `s` in the usage view saves the usage JSON (the cache folder's `usage` folder by default) */
  usageFolder: string;
  dispatch(event: DashboardEvent): void;
  /** ends the program (the dashboard restores the terminal) */
  quit(status: number, message: string | null): void;
}

/** Any error as the plain data the reducer understands. */
export function failureOf(error: unknown): Failure {
  if (error instanceof ServerError) {
    return { kind: 'refused', code: String(error.body.code), message: error.body.message, fatal: error.body.fatal };
  }
  if (error instanceof ConnectionClosedError) return { kind: 'closed', message: error.message };
  return { kind: 'failed', message: plainMessage(error) };
}

/** What the system's error codes mean to a person, for a file of the cache folder being read. */
const FILE_PROBLEMS: Readonly<Record<string, string>> = {
  ENOENT: 'is not in the cache folder any more',
  EACCES: 'cannot be read: permission denied',
  EPERM: 'cannot be read: permission denied',
  EISDIR: 'is a folder, not a file',
};

/**
 * An error as a sentence: a system error (`ENOENT: no such file or directory, open '/tmp/…'`) loses its code, its
 * call and its path, which the caller says in words; other errors keep their message.
 */
export function plainMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !error.message.startsWith(`${code}: `)) return error.message;
  return error.message.slice(code.length + 2).replace(/, \w+ '.*$/, '');
}

/** Why the file `file` of image `name` could not be used, as a sentence naming the image and the file. */
export function fileProblem(error: unknown, name: string, file: string): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const problem = typeof code === 'string' ? FILE_PROBLEMS[code] : undefined;
  if (problem) return `${name} ${problem} (${file})`;
  return `cannot preview ${name}: ${plainMessage(error)}`;
}

function savedOf(cache: LocalCache, name: string): SavedImage | null {
  const entry = cache.entry(name);
  return entry
    ? { path: cache.pathOf(name), sha256: entry.sha256, bytes: entry.bytes, fetchedAt: entry.fetchedAt }
    : null;
}

/**
 * A usage file name that sorts by time and is safe on every file system: imgcache-usage-2026-11-25T10-05-00Z.json,
 * or imgcache-usage-2026-11-25T10-05-00Z-client-3.json for one client's part.
 */
export function usageFileName(now: Date, client: string | null = null): string {
  const time = now
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  const part = client === null ? '' : `-${client.replace(/[^A-Za-z0-9._-]/g, '_')}`;
  return `imgcache-usage-${time}${part}.json`;
}

/** The usage document cut to one client's record ([P-32]'s shape; rejected connections belong to no client). */
export function usageOfClient(text: string, client: string): string {
  const document = JSON.parse(text) as { clients?: Array<{ name?: unknown }> };
  const clients = (document.clients ?? []).filter((entry) => entry.name === client);
  return `${JSON.stringify({ ...document, clients, rejected: [] }, null, 2)}\n`;
}

/** Decoded previews, newest last; a few are kept so that moving up and down does not decode again. */
const PREVIEW_CACHE_SIZE = 6;

export class EffectRunner {
  readonly #context: EffectContext;
  readonly #previews = new Map<string, DecodedImage>();
  /**
   * The outcomes of the gets told so far, in the order they were asked: answers come in that order ([P-3]), but a
   * save is told only once its file is renamed, so a refusal of a later image would be logged before it.
   */
  #downloadsTold: Promise<void> = Promise.resolve();

  constructor(context: EffectContext) {
    this.#context = context;
  }

  run(effect: Effect): void {
    const { dispatch } = this.#context;
    switch (effect.type) {
      case 'list':
        this.#list(effect.quiet === true).catch((error) =>
          dispatch({ type: 'request-failed', request: 'list', failure: failureOf(error) }),
        );
        return;
      case 'download': {
        const failed = (error: unknown): DashboardEvent => ({
          type: 'request-failed',
          request: 'get',
          image: effect.name,
          failure: failureOf(error),
        });
        const outcome = this.#download(effect.name).catch(failed);
        this.#downloadsTold = this.#downloadsTold
          .then(async () => dispatch(await outcome))
          .catch((error) => dispatch(failed(error)));
        return;
      }
      case 'usage':
        this.#usage().catch((error) =>
          dispatch({ type: 'request-failed', request: 'usage', failure: failureOf(error) }),
        );
        return;
      case 'save-usage':
        this.#saveUsage(effect.text, effect.client).catch((error) =>
          dispatch({ type: 'request-failed', request: 'save-usage', failure: failureOf(error) }),
        );
        return;
      case 'load-preview':
        this.#preview(effect.name, effect.path, effect.sha256).catch((error) => {
          dispatch({
            type: 'preview-failed',
            name: effect.name,
            sha256: effect.sha256,
            message: fileProblem(error, effect.name, effect.path),
          });
          // The file may be gone or changed: the row says so once the folder is checked.
          this.#checkLocal(effect.name);
        });
        return;
      case 'check-local':
        this.#checkLocal(effect.name, effect.before);
        return;
      case 'quit':
        this.#context.quit(effect.status, effect.message);
        return;
      case 'reconnect':
        // The dashboard's glue opens the new session; a runner is bound to one.
        return;
    }
  }

  async #list(quiet: boolean): Promise<void> {
    const { client, cache, dispatch } = this.#context;
    // The folder is checked again as the list goes: a file deleted behind our back is no longer called current.
    const [result] = await Promise.all([client.list(), cache.recheck()]);
    const images = result.images.map((image) => ({
      ...image,
      local: cache.stateOf(image),
      saved: savedOf(cache, image.name),
    }));
    dispatch({ type: 'list-loaded', images, session: result.session, quota: result.quota, quiet });
  }

  /** Reports what the folder holds for `name` now; a check that fails reports what was known. */
  #checkLocal(name: string, before?: 'get'): void {
    const { cache, dispatch } = this.#context;
    const report = () =>
      dispatch({ type: 'local-checked', name, saved: savedOf(cache, name), ...(before ? { before } : {}) });
    cache.check(name).then(report, report);
  }

  /** The get, its progress told as it goes; resolves with the event that tells how it ended. */
  async #download(name: string): Promise<DashboardEvent> {
    const { client, cache, dispatch } = this.#context;
    const outcome = await cache.fetch(client, name, (received, total) =>
      dispatch({ type: 'download-progress', name, received, total }),
    );
    const { entry } = outcome;
    return {
      type: 'download-finished',
      name,
      outcome: outcome.status,
      saved: { path: outcome.path, sha256: entry.sha256, bytes: entry.bytes, fetchedAt: entry.fetchedAt },
      quota: outcome.quota,
    };
  }

  async #usage(): Promise<void> {
    const { client, dispatch } = this.#context;
    const text = await client.usageText();
    dispatch({ type: 'usage-loaded', text, document: parseUsageDocument(JSON.parse(text)) });
  }

  async #saveUsage(text: string, client: string | null): Promise<void> {
    const folder = this.#context.usageFolder;
    await mkdir(folder, { recursive: true });
    const file = path.join(folder, usageFileName(new Date(), client));
    const saved = client === null ? text : usageOfClient(text, client);
    await writeFile(file, saved);
    this.#context.dispatch({ type: 'usage-saved', path: file, bytes: Buffer.byteLength(saved), client });
  }

  async #preview(name: string, file: string, sha256: string): Promise<void> {
    const key = `${file}\0${sha256}`;
    let image = this.#previews.get(key);
    if (!image) {
      image = await decodePng(await readFile(file));
      this.#previews.set(key, image);
      const oldest = this.#previews.keys().next().value;
      if (this.#previews.size > PREVIEW_CACHE_SIZE && oldest !== undefined) this.#previews.delete(oldest);
    }
    this.#context.dispatch({ type: 'preview-loaded', name, sha256, image });
  }
}
