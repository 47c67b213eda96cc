/**
 * [P-85] Keyed quotas across the cluster: `identity_usage` counts each identity's images per quota window. A keyed
 * get reserves its image in one statement that counts it only while the count is under the limit, so two nodes
 * serving the same identity at once never both take its last image. An image that does not go out whole, or whose
 * record fails, is given back.
 */
import type { Pool } from './pool.ts';

export interface QuotaWindowKey {
  identity: string;
  /** ms since the epoch: the start of the quota's current period */
  start: number;
}

export interface ImageReservation {
  /** whether one image was counted for this request */
  reserved: boolean;
  /** the identity's images in the window, this one included when reserved */
  used: number;
}

export async function reserveQuotaImage(pool: Pool, window: QuotaWindowKey, limit: number): Promise<ImageReservation> {
  if (limit < 1) return { reserved: false, used: await quotaUsed(pool, window) };
  const { rows } = await pool.query<{ used: number }>(
    `INSERT INTO identity_usage AS usage (identity, window_start, used) VALUES ($1, $2, 1)
     ON CONFLICT (identity, window_start) DO UPDATE SET used = usage.used + 1 WHERE usage.used < $3
     RETURNING used`,
    [window.identity, window.start, limit],
  );
  const used = rows[0]?.used;
  if (used !== undefined) return { reserved: true, used };
  return { reserved: false, used: await quotaUsed(pool, window) };
}

export async function giveBackQuotaImage(pool: Pool, window: QuotaWindowKey): Promise<void> {
  await pool.query('UPDATE identity_usage SET used = used - 1 WHERE identity = $1 AND window_start = $2 AND used > 0', [
    window.identity,
    window.start,
  ]);
}

export async function quotaUsed(pool: Pool, window: QuotaWindowKey): Promise<number> {
  const { rows } = await pool.query<{ used: number }>(
    'SELECT used FROM identity_usage WHERE identity = $1 AND window_start = $2',
    [window.identity, window.start],
  );
  return rows[0]?.used ?? 0;
}
