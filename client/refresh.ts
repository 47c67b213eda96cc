/**
 * `refresh`: revalidates every image of the local cache in one session. Each is a conditional get [P-34], up to
 * `inFlight` of them sent ahead of their answers (pipelined, [P-16] [P-75]); an unchanged image costs nothing [P-36],
 * a changed one is downloaded and counts.
 */
import { type Quota, ServerError } from '../src/protocol/index.ts';
import type { ImgcacheClient } from './imgcache-client.ts';
import type { FetchSettled, LocalCache, ManifestEntry } from './local-cache.ts';
import { leftUndone, MAX_IN_FLIGHT } from './pipeline.ts';

/** What revalidating one image came to; `previous` is the hash held before. */
export type RefreshItem =
  | { name: string; status: 'not-modified' | 'downloaded'; sha256: string; bytes: number; previous: string }
  | { name: string; status: 'gone' }
  /** [P-55] not revalidated: the session ended before its answer (quota exhausted, connection lost) */
  | { name: string; status: 'skipped' }
  | { name: string; status: 'failed'; error: string };

export interface RefreshResult {
  items: RefreshItem[];
  quota: Quota;
  /** the fatal refusal that ended the session early (quota-exhausted: a changed image needed a transfer), if any */
  fatal: ServerError | null;
}

export async function refreshAll(
  cache: LocalCache,
  client: ImgcacheClient,
  inFlight = MAX_IN_FLIGHT,
): Promise<RefreshResult> {
  const held = cache.entries();
  const settled = await cache.fetchMany(
    client,
    held.map((entry) => entry.name),
    inFlight,
  );
  const undone = leftUndone(settled);
  const items = held.map((entry, index): RefreshItem => {
    if (undone[index]) return { name: entry.name, status: 'skipped' };
    return itemOf(entry, settled[index] as FetchSettled);
  });
  const fatal = settled.find(isFatalRefusal)?.reason ?? null;
  return { items, quota: client.quota, fatal };
}

function itemOf(previous: ManifestEntry, result: FetchSettled): RefreshItem {
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
