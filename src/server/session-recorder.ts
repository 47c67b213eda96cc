/**
 * The one place that turns what a session decided into stored history events. The connection glue records these
 * events and sends the reply only once they are committed, so nothing reaches a client that is not on record.
 */
import type { NewEvent } from '../../db/events.ts';
import type { SessionEffect } from '../../machines/session.types.ts';
import type { CatalogEntry } from './image-catalog.ts';
import { recordedCommand, recordedName } from './image-name.ts';

export interface RecordingContext {
  connection: number;
  remote: string;
  /** the catalog entry of the image a serve-image or serve-not-modified effect is about */
  image?: CatalogEntry;
  /** whether a REJECT was sent (and recorded) on this connection */
  rejected?: boolean;
  /** whether the session's admission is on record (its session-admitted committed, its WELCOME sent) */
  admittedOnRecord?: boolean;
  /** for a refused name: what it looked like it was trying */
  suspicious?: string | null;
  /** [P-52] for a request refused before it was parsed whole: its command and image, as far as they could be read */
  refused?: { command?: string; image?: string } | undefined;
  /** [P-8] the software the client named in its HELLO, if it did */
  client?: string | undefined;
}

/**
 * Whether the effect's events are facts (db/event-log.ts `recordFact`): things that happened whatever the history
 * says, kept and committed later if the history fails, rather than an answer's events, discarded with the answer.
 */
export function recordsFact(effect: SessionEffect): boolean {
  return effect.type === 'closed';
}

export function eventsForEffect(effect: SessionEffect, context: RecordingContext): NewEvent[] {
  const session = context.connection;
  switch (effect.type) {
    case 'welcome':
      return [
        {
          session,
          type: 'session-admitted',
          data: {
            name: effect.identity.name,
            code: effect.identity.code,
            tier: effect.identity.tier,
            quota: effect.quota.limit,
            protocolVersion: effect.version,
            remote: context.remote,
            ...(context.client === undefined ? {} : { client: context.client }),
            // [P-60] [P-64] a keyed session's identity, and the period its quota runs over
            ...(effect.identity.identity === undefined ? {} : { identity: effect.identity.identity }),
            ...(effect.quota.period === undefined ? {} : { period: effect.quota.period }),
          },
        },
      ];
    case 'serve-image': {
      const image = context.image;
      if (!image) throw new Error(`serve-image of ${effect.image} without its catalog entry`);
      return [
        {
          session,
          type: 'image-served',
          data: {
            requestId: effect.requestId,
            image: image.name,
            bytes: image.bytes,
            sha256: image.sha256,
            quotaUsed: effect.quota.used,
            quotaLimit: effect.quota.limit,
          },
        },
      ];
    }
    case 'serve-not-modified': {
      const image = context.image;
      if (!image) throw new Error(`serve-not-modified of ${effect.image} without its catalog entry`);
      const data = { requestId: effect.requestId, image: image.name, sha256: image.sha256 };
      return [{ session, type: 'image-not-modified', data }];
    }
    case 'refuse':
      return refusalEvents(effect, session, context.suspicious ?? null, context.refused);
    case 'closed':
      // Only a session on record as admitted gets a close record: one whose admission could not be committed was
      // rejected (history-unavailable), and its REJECT is its record.
      if (effect.admitted && (context.admittedOnRecord ?? true)) {
        return [{ session, type: 'session-closed', data: { reason: effect.reason } }];
      }
      // A REJECT is its own record; a connection that simply went away before its HELLO needs one.
      if (context.rejected) return [];
      return [{ session, type: 'connection-dropped', data: { reason: effect.reason, remote: context.remote } }];
    default:
      return [];
  }
}

function refusalEvents(
  effect: Extract<SessionEffect, { type: 'refuse' }>,
  session: number,
  suspicious: string | null,
  refused: { command?: string; image?: string } = {},
): NewEvent[] {
  // A failing history cannot record its own failure; the operator's log has it.
  if (effect.code === 'history-unavailable') return [];
  if (effect.code === 'quota-exhausted') {
    return [
      {
        session,
        type: 'quota-exhausted',
        data: { requestId: effect.requestId ?? 0, image: effect.image ?? '', quotaLimit: effect.quota.limit },
      },
    ];
  }
  // [P-52] The command and image as sent, when they could be read; `unknown` when the command was not a string.
  const command =
    effect.command ?? (refused.command === undefined ? undefined : recordedCommand(refused.command)) ?? 'unknown';
  const image = effect.image ?? refused.image;
  const data = {
    requestId: effect.requestId,
    command,
    code: effect.code,
    reason: effect.message,
    ...(image === undefined ? {} : recordedName(image)),
    ...(suspicious ? { suspicious } : {}),
  };
  return [{ session, type: 'request-refused', data }];
}

/** A rejected connection's record; `connection` is null for one the server had no number to give ([P-26]). */
export function rejectionEvent(
  connection: number | null,
  remote: string,
  reason: string,
  occupancy: { open: number; capacity: number },
  supported?: readonly number[],
  claimed?: { identity?: string | undefined; keyId?: string | undefined },
): NewEvent {
  return {
    session: connection,
    type: 'connection-rejected',
    data: {
      reason,
      occupancy,
      remote,
      ...(supported ? { supported: [...supported] } : {}),
      // [P-62] the name and key id a refused key claimed; the key itself is never recorded
      ...(claimed?.identity === undefined ? {} : { identity: claimed.identity }),
      ...(claimed?.keyId === undefined ? {} : { keyId: claimed.keyId }),
    },
  };
}
