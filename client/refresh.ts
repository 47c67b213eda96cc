/**
 * `refresh`: revalidates every image of the local cache in one session. Each is a conditional get [P-34], all sent
 * at once (pipelined, [P-16]); an unchanged image costs nothing [P-36], a changed one is downloaded and counts.
 */
import { type Quota, ServerError } from '../src/protocol/index.ts';
import type { ImgcacheClient } from './imgcache-client.ts';
import type { FetchOutcome, LocalCache, ManifestEntry } from './local-cache.ts';

/** What revalidating one image came to; `previous` is the hash held before. */
export type RefreshItem =
  | { name: string; status: 'not-modified' | 'downloaded'; sha256: string; bytes: number; previous: string }
  | { name: string; status: 'gone' }
  | { name: string; status: 'failed'; error: string };

export interface RefreshResult {
  items: RefreshItem[];
  quota: Quota;
  /** the fatal refusal that ended the session early (quota-exhausted: a changed image needed a transfer), if any */
  fatal: ServerError | null;
}

export async function refreshAll(cache: LocalCache, client: ImgcacheClient): Promise<RefreshResult> {
  const held = cache.entries();
  const settled = await Promise.allSettled(held.map((entry) => cache.fetch(client, entry.name)));
  const items = held.map((entry, index) => itemOf(entry, settled[index] as PromiseSettledResult<FetchOutcome>));
  const fatal = settled.find(isFatalRefusal)?.reason ?? null;
  return { items, quota: client.quota, fatal };
}

function itemOf(previous: ManifestEntry, result: PromiseSettledResult<FetchOutcome>): RefreshItem {
  if (result.status === 'fulfilled') {
    const { status, entry } = result.value;
    return { name: entry.name, status, sha256: entry.sha256, bytes: entry.bytes, previous: previous.sha256 };
  }
  const error = result.reason as Error;
  if (error instanceof ServerError && error.code === 'image-not-found') return { name: previous.name, status: 'gone' };
  return { name: previous.name, status: 'failed', error: error.message };
}

function isFatalRefusal(
  result: PromiseSettledResult<unknown>,
): result is PromiseRejectedResult & { reason: ServerError } {
  return result.status === 'rejected' && result.reason instanceof ServerError && result.reason.fatal;
}
