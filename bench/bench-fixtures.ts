/**
 * What the servers serve and how imgcache is configured for the bench: images of the measured sizes (random bytes,
 * so nothing on the way can compress them), and a tier table that gives every code a quota no run can use up
 * ([P-20], [P-21]), passed with `--tiers` like any operator's table.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TierRange } from '../machines/tiers.ts';

export interface BenchImage {
  /** file name, also the imgcache image name and the nginx URL path (with a leading /) */
  name: string;
  bytes: number;
  /** e.g. "4 KiB" */
  label: string;
}

export function sizeLabel(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/**
 * Writes one image per size into `folder`, readable by every user (nginx's workers run as an unprivileged user).
 */
export function writeBenchImages(folder: string, sizes: readonly number[]): BenchImage[] {
  mkdirSync(folder, { recursive: true });
  chmodSync(folder, 0o755);
  return sizes.map((bytes) => {
    const name = `bench-${bytes}.png`;
    const file = path.join(folder, name);
    writeFileSync(file, randomBytes(bytes));
    chmodSync(file, 0o644);
    return { name, bytes, label: sizeLabel(bytes) };
  });
}

/** A quota per session no run reaches (sessions still end and reconnect if one does). */
export const BENCH_QUOTA = 1_000_000_000;

/** Every code in one tier whose quota no run uses up. */
export const BENCH_TIERS: readonly TierRange[] = [
  { from: 100, to: 999, tier: 'bench', quota: BENCH_QUOTA, canReadUsage: true },
];

export function writeBenchTiers(file: string): void {
  writeFileSync(file, `${JSON.stringify(BENCH_TIERS)}\n`);
}
