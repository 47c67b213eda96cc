/**
 * Plain-text renderings of what the local cache knows and what a conditional fetch did ([P-34] [P-35]), for the
 * CLI: pure functions of their arguments.
 */
import type { ImageInfo, Quota } from '../src/protocol/index.ts';
import { formatBytes, formatList, periodOf } from './format.ts';
import type { ListResult } from './imgcache-client.ts';
import type { FetchOutcome, LocalState } from './local-cache.ts';
import type { RefreshItem } from './refresh.ts';

export const LOCAL_STATE_LABELS: Readonly<Record<LocalState, string>> = {
  absent: 'not downloaded',
  current: 'current',
  stale: 'changed on the server',
};

/** `list` with each image marked by the state of the local copy. */
export function formatListWithMarks(result: ListResult, stateOf: (image: ImageInfo) => LocalState): string {
  const lines = formatList(result).split('\n');
  const [header = '', count = '', ...rows] = lines;
  const marked = rows.map((row, index) => {
    const image = result.images[index];
    return image ? `${row}  ${LOCAL_STATE_LABELS[stateOf(image)]}` : row;
  });
  return [header, count, ...marked].join('\n');
}

function shortHash(sha256: string): string {
  return `${sha256.slice(0, 12)}…`;
}

function quotaLeft(quota: Quota): string {
  return `${quota.remaining} of ${quota.limit} requests left${periodOf(quota)}`;
}

/** One `get`: saved, or not modified. */
export function formatFetch(outcome: FetchOutcome): string {
  const { entry, path, quota } = outcome;
  if (outcome.status === 'not-modified') {
    return `not modified: ${entry.name} (sha256 ${shortHash(entry.sha256)}) is current in ${path}; ${quotaLeft(quota)}`;
  }
  return `saved ${entry.name} (${formatBytes(entry.bytes)}, sha256 ${shortHash(entry.sha256)}) to ${path}; ${quotaLeft(quota)}`;
}

/** `refresh`: a summary line, then one line per image (changed ones first), then the quota. */
export function formatRefresh(items: readonly RefreshItem[], quota: Quota, folder: string): string {
  if (items.length === 0) return `nothing to refresh: no images in ${folder}`;
  const count = (status: RefreshItem['status']) => items.filter((item) => item.status === status).length;
  const parts = [`${count('not-modified')} not modified`, `${count('downloaded')} changed and downloaded`];
  if (count('gone') > 0) parts.push(`${count('gone')} no longer on the server`);
  if (count('failed') > 0) parts.push(`${count('failed')} failed`);
  if (count('skipped') > 0) parts.push(`${count('skipped')} not revalidated (the session ended)`);
  const order: Record<RefreshItem['status'], number> = {
    downloaded: 0,
    gone: 1,
    failed: 2,
    skipped: 3,
    'not-modified': 4,
  };
  const sorted = [...items].sort((a, b) => order[a.status] - order[b.status]);
  const width = Math.max(...items.map((item) => item.name.length));
  const lines = sorted.map((item) => `  ${item.name.padEnd(width)}  ${describeItem(item)}`);
  const plural = items.length === 1 ? '' : 's';
  return [`refreshed ${items.length} image${plural}: ${parts.join(', ')}`, ...lines, quotaLeft(quota)].join('\n');
}

function describeItem(item: RefreshItem): string {
  switch (item.status) {
    case 'not-modified':
      return `not modified (sha256 ${shortHash(item.sha256)})`;
    case 'downloaded':
      return `changed on the server: downloaded ${formatBytes(item.bytes)}, sha256 ${shortHash(item.previous)} -> ${shortHash(item.sha256)}`;
    case 'gone':
      return 'no longer on the server (the local copy is kept)';
    case 'failed':
      return `not refreshed: ${item.error}`;
    case 'skipped':
      return 'not refreshed: the session ended before its answer';
  }
}
