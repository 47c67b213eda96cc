/** Plain-text renderings of answers for the CLI: pure functions of the answer. */
import type { Quota, ReceivedReject, SessionIdentity } from '../src/protocol/index.ts';
import type { ListResult } from './imgcache-client.ts';

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

export function formatList(result: ListResult): string {
  const { session, quota, images } = result;
  const header = `${whoYouAre(session)}; ${quota.remaining} of ${quota.limit} image requests left${periodOf(quota)}`;
  const width = Math.max(5, ...images.map((image) => image.name.length));
  const rows = images.map(
    (image) =>
      `  ${image.name.padEnd(width)}  ${formatBytes(image.bytes).padStart(10)}  ${image.modified}  ${image.sha256.slice(0, 12)}`,
  );
  return [header, `${images.length} image${images.length === 1 ? '' : 's'}:`, ...rows].join('\n');
}

/** [P-68] a keyed session names its identity */
export function whoYouAre(session: SessionIdentity): string {
  const tier = `code ${session.code}, tier ${session.tier}`;
  return session.identity === undefined
    ? `you are ${session.name}, ${tier}`
    : `you are ${session.identity} (session ${session.name}), ${tier}`;
}

/** [P-64] a keyed quota's period and when it resets, or nothing */
export function periodOf(quota: Quota): string {
  if (quota.period === undefined) return '';
  return quota.resetsAt ? ` this ${quota.period} (resets ${quota.resetsAt})` : ` per ${quota.period}`;
}

export function formatReject(reject: ReceivedReject): string {
  const parts = [`rejected by the server: ${reject.message} [${reject.reason}]`];
  if (reject.occupancy) parts.push(`occupancy ${reject.occupancy.open}/${reject.occupancy.capacity}`);
  if (reject.retryAfterMs !== undefined) parts.push(`retry after ${(reject.retryAfterMs / 1000).toFixed(1)} s`);
  if (reject.supported) parts.push(`the server speaks versions ${reject.supported.join(', ')}`);
  return parts.join('; ');
}
