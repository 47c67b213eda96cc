/**
 * Pure decisions of the live catalog: given what the catalog holds, the files still settling, and what one look at
 * the folder found, which images are gone, which files are still being written, and which are ready to be hashed
 * and entered [P-37].
 *
 * A file enters (or replaces its entry) only once it has settled: a look found it with the same size, modification
 * time, device and inode as a look at least `settleMs` earlier. Times here (`now`, `since`) are read on a monotonic
 * clock, never the wall clock: a wall clock stepped back (or forward) must not stall or rush settling. A file's
 * modification time is only part of its identity, never subtracted from anything. A writer that is still writing changes the size or the time
 * between looks, so a half-written file is never entered. (A writer that pauses longer than `settleMs` cannot be
 * told from one that finished; writing to a temporary name and renaming into place is the way to be sure.)
 */

/** What identifies one version of a file without reading it (image-file-reader.ts checks it on every open). */
export interface FileSignature {
  readonly bytes: number;
  readonly mtimeMs: number;
  readonly dev: number;
  readonly ino: number;
}

/** A file seen with this signature since `since` (ms on the monotonic clock), not entered yet. */
export interface SettlingFile {
  signature: FileSignature;
  since: number;
}

export interface LookState {
  /** the signature of each image in the catalog, as it was when it entered */
  entries: ReadonlyMap<string, FileSignature>;
  settling: ReadonlyMap<string, SettlingFile>;
}

export interface LookPlan {
  /** in the catalog, no longer in the folder (or no longer a regular file) */
  removed: string[];
  /** the files still settling after this look */
  settling: Map<string, SettlingFile>;
  /** files this look saw change (new, or different from the last look): they start settling now */
  started: string[];
  /** settled files to hash and enter */
  settled: Array<{ name: string; signature: FileSignature }>;
}

export function sameSignature(a: FileSignature, b: FileSignature): boolean {
  return a.bytes === b.bytes && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.dev === b.dev;
}

/** Plans what one look means. `observed` holds the regular image files found, by name; `now` is monotonic ms. */
export function planLook(
  state: LookState,
  observed: ReadonlyMap<string, FileSignature>,
  now: number,
  settleMs: number,
): LookPlan {
  const plan: LookPlan = { removed: [], settling: new Map(), started: [], settled: [] };
  for (const name of state.entries.keys()) if (!observed.has(name)) plan.removed.push(name);
  for (const [name, signature] of observed) {
    const entered = state.entries.get(name);
    if (entered && sameSignature(entered, signature)) continue;
    const settling = state.settling.get(name);
    if (!settling || !sameSignature(settling.signature, signature)) {
      plan.settling.set(name, { signature, since: now });
      plan.started.push(name);
    } else if (now - settling.since >= settleMs) plan.settled.push({ name, signature });
    else plan.settling.set(name, settling);
  }
  return plan;
}
