/**
 * The usage document of [P-32] as the rows of the usage view: one row per image request (client, tier, image, time,
 * outcome), and one row for a client that asked for no image, so every client can be found and filtered. Pure.
 * The document is read leniently by parseUsageDocument (src/protocol).
 */
import type { UsageDocument } from '../../src/protocol/index.ts';

export type { UsageDocument };

export interface UsageRow {
  client: string;
  tier: string;
  /** null for a client that asked for no image */
  image: string | null;
  at: string;
  outcome: string;
}

export function usageRows(document: UsageDocument, filter: string | null): UsageRow[] {
  const rows: UsageRow[] = [];
  for (const client of document.clients) {
    if (filter !== null && client.name !== filter) continue;
    if (client.requests.length === 0) {
      rows.push({
        client: client.name,
        tier: client.tier,
        image: null,
        at: client.connectedAt,
        outcome: sessionOutcome(client),
      });
    }
    for (const request of client.requests) {
      rows.push({
        client: client.name,
        tier: client.tier,
        image: request.image,
        at: request.at,
        outcome: request.outcome,
      });
    }
  }
  return rows;
}

/** A session without requests: still connected, or closed, with the reason the server recorded. */
export function sessionOutcome(client: UsageDocument['clients'][number]): string {
  if (client.closeReason !== null) return `closed: ${client.closeReason}`;
  return client.disconnectedAt === null ? 'connected' : 'closed';
}

export function usageClientNames(document: UsageDocument): string[] {
  return [...new Set(document.clients.map((client) => client.name))];
}

/** The filter after `current` when cycling: every client, then each client in turn, then every client again. */
export function nextUsageFilter(document: UsageDocument, current: string | null): string | null {
  const names = usageClientNames(document);
  if (names.length === 0) return null;
  if (current === null) return names[0] ?? null;
  const index = names.indexOf(current);
  return index < 0 || index === names.length - 1 ? null : (names[index + 1] ?? null);
}
