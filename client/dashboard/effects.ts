/**
 * Carries out the reducer's effects with the real parts (the client library, the local cache, the file system, the
 * PNG decoder) and reports each result back as an event. Every failure becomes a `request-failed` event with plain
 * data, never an exception that could reach the terminal.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConnectionClosedError, parseUsageDocument, ServerError } from '../../src/protocol/index.ts';
import type { ImgcacheClient } from '../imgcache-client.ts';
import type { LocalCache } from '../local-cache.ts';
import { type DecodedImage, decodePng } from './png-decoder.ts';
import type { DashboardEvent, Effect, Failure, SavedImage } from './view-state.types.ts';

export interface EffectContext {
  client: ImgcacheClient;
  cache: LocalCache;
  /** where `s` in the usage view saves the usage JSON */
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
  return { kind: 'failed', message: error instanceof Error ? error.message : String(error) };
}

function savedOf(cache: LocalCache, name: string): SavedImage | null {
  const entry = cache.entry(name);
  return entry
    ? { path: cache.pathOf(name), sha256: entry.sha256, bytes: entry.bytes, fetchedAt: entry.fetchedAt }
    : null;
}

/** A usage file name that sorts by time and is safe on every file system: imgcache-usage-2026-11-25T10-05-00Z.json */
export function usageFileName(now: Date): string {
  return `imgcache-usage-${now
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-')}.json`;
}

/** Decoded previews, newest last; a few are kept so that moving up and down does not decode again. */
const PREVIEW_CACHE_SIZE = 6;

export class EffectRunner {
  readonly #context: EffectContext;
  readonly #previews = new Map<string, DecodedImage>();

  constructor(context: EffectContext) {
    this.#context = context;
  }

  run(effect: Effect): void {
    const { dispatch } = this.#context;
    switch (effect.type) {
      case 'list':
        this.#list().catch((error) => dispatch({ type: 'request-failed', request: 'list', failure: failureOf(error) }));
        return;
      case 'download':
        this.#download(effect.name).catch((error) =>
          dispatch({ type: 'request-failed', request: 'get', image: effect.name, failure: failureOf(error) }),
        );
        return;
      case 'usage':
        this.#usage().catch((error) =>
          dispatch({ type: 'request-failed', request: 'usage', failure: failureOf(error) }),
        );
        return;
      case 'save-usage':
        this.#saveUsage(effect.text).catch((error) =>
          dispatch({ type: 'request-failed', request: 'save-usage', failure: failureOf(error) }),
        );
        return;
      case 'load-preview':
        this.#preview(effect.name, effect.path, effect.sha256).catch((error) =>
          dispatch({
            type: 'preview-failed',
            name: effect.name,
            sha256: effect.sha256,
            message: failureOf(error).message,
          }),
        );
        return;
      case 'quit':
        this.#context.quit(effect.status, effect.message);
        return;
    }
  }

  async #list(): Promise<void> {
    const { client, cache, dispatch } = this.#context;
    const result = await client.list();
    const images = result.images.map((image) => ({
      ...image,
      local: cache.stateOf(image),
      saved: savedOf(cache, image.name),
    }));
    dispatch({ type: 'list-loaded', images, session: result.session, quota: result.quota });
  }

  async #download(name: string): Promise<void> {
    const { client, cache, dispatch } = this.#context;
    const outcome = await cache.fetch(client, name, (received, total) =>
      dispatch({ type: 'download-progress', name, received, total }),
    );
    const { entry } = outcome;
    dispatch({
      type: 'download-finished',
      name,
      outcome: outcome.status,
      saved: { path: outcome.path, sha256: entry.sha256, bytes: entry.bytes, fetchedAt: entry.fetchedAt },
      quota: outcome.quota,
    });
  }

  async #usage(): Promise<void> {
    const { client, dispatch } = this.#context;
    const text = await client.usageText();
    dispatch({ type: 'usage-loaded', text, document: parseUsageDocument(JSON.parse(text)) });
  }

  async #saveUsage(text: string): Promise<void> {
    const file = path.join(this.#context.usageFolder, usageFileName(new Date()));
    await writeFile(file, text);
    this.#context.dispatch({ type: 'usage-saved', path: file, bytes: Buffer.byteLength(text) });
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
