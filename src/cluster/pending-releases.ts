/**
 * [P-82] The slots this node holds in the cluster, and those whose session's end is on record and whose release has
 * not reached the cluster yet. A release that fails is kept and tried again: a slot never leaks while the node runs
 * (and a node that stops or is lost has all its slots freed anyway). Pure: the caller does the I/O.
 */
import type { NewEvent } from '../../db/events.ts';

/** Events that end a connection on record: after one, its slot (if it had one) is free. */
const ENDINGS: ReadonlySet<string> = new Set(['session-closed', 'connection-rejected', 'connection-dropped']);

export class PendingReleases {
  readonly #held = new Set<number>();
  readonly #due = new Set<number>();

  /** The session got a slot. */
  held(session: number): void {
    this.#held.add(session);
  }

  /** The session's slot is to be released now (it went away before anything was recorded). */
  release(session: number): void {
    if (this.#held.delete(session)) this.#due.add(session);
  }

  /** Committed events: those that end a session holding a slot make its release due. True if any did. */
  recorded(events: readonly NewEvent[]): boolean {
    let due = false;
    for (const event of events) {
      if (event.session === null || !ENDINGS.has(event.type) || !this.#held.has(event.session)) continue;
      this.release(event.session);
      due = true;
    }
    return due;
  }

  /** Takes every due release, to be sent to the cluster; give back the ones that failed with `failed`. */
  take(): number[] {
    const sessions = [...this.#due];
    this.#due.clear();
    return sessions;
  }

  failed(sessions: readonly number[]): void {
    for (const session of sessions) this.#due.add(session);
  }

  /** Every slot held (the node was declared lost: the cluster freed them all). */
  forgetAll(): number[] {
    const sessions = [...this.#held];
    this.#held.clear();
    this.#due.clear();
    return sessions;
  }

  get heldCount(): number {
    return this.#held.size;
  }
}
