/**
 * Conditional `get` [P-34] [P-35]: whether the client already holds the image's current bytes, and the REPLY that
 * tells it so without sending them. The hash compared is the catalog entry's, taken when the image entered the
 * catalog [P-37], so answering costs no read of the file.
 */
import type { NotModifiedReply, Quota, Request } from '../protocol/messages.ts';
import { type CatalogEntry, describeEntry } from './image-catalog.ts';

/** [P-34] The request is a get whose `have` is the entry's SHA-256. */
export function holdsCurrentImage(request: Request, entry: CatalogEntry | undefined): boolean {
  return request.command === 'get' && entry !== undefined && request.have === entry.sha256;
}

/** [P-35] The not-modified REPLY: the image's description and the quota, no stream. */
export function notModifiedReply(requestId: number, entry: CatalogEntry, quota: Quota): NotModifiedReply {
  const info = describeEntry(entry);
  return {
    id: requestId,
    command: 'get',
    status: 'not-modified',
    image: info.name,
    bytes: info.bytes,
    sha256: info.sha256,
    modified: info.modified,
    quota,
  };
}
