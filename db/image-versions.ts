/**
 * The compact row of an image served. Serving an image is nearly every row of a history, and its data used to be
 * the whole JSON object, about 175 bytes, most of them the image's name and SHA-256, the same for every get of that
 * image. Since schema version 5 the name, size and hash are written once, in `image_versions`; the row of each get
 * names that version in its `image_version` column, and its `data` holds the three integers that change:
 * `[requestId, quotaUsed, quotaLimit]`, about 12 bytes.
 *
 * Readers see no difference: the `events` view (db/schema.ts) gives `sqlite3` users the same JSON text as before,
 * and readers in the code join the version and decode the compact form here (db/read-events.ts). A row written
 * before version 5 keeps its JSON object and no version; both are read. A PostgreSQL history stores the JSON object
 * (servedImageJson), as before.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { HistoryEvent } from './events.ts';

type Database = BetterSqlite3.Database;

export type ImageServedData = Extract<HistoryEvent, { type: 'image-served' }>['data'];

/**
 * An image served as the event log hands it to a committer: the event's data, copied into a tuple when recorded (so
 * a caller mutating its object later cannot change the history), not yet encoded.
 */
export type ServedImageRow = readonly [
  requestId: number,
  image: string,
  bytes: number,
  sha256: string,
  quotaUsed: number,
  quotaLimit: number,
];

export function servedImageRow(data: ImageServedData): ServedImageRow {
  return [data.requestId, data.image, data.bytes, data.sha256, data.quotaUsed, data.quotaLimit];
}

/** The event's data as it was always written: a JSON object, its members in this order. */
export function servedImageJson(row: ServedImageRow): string {
  const [requestId, image, bytes, sha256, quotaUsed, quotaLimit] = row;
  return JSON.stringify({ requestId, image, bytes, sha256, quotaUsed, quotaLimit });
}

/** The `data` of a compact image-served row: `[requestId, quotaUsed, quotaLimit]`, integers all, so no JSON encoder. */
export function compactServedData(row: ServedImageRow): string {
  return `[${row[0]},${row[4]},${row[5]}]`;
}

/** The event's data from a compact row's `data` and the columns of its image version. */
export function expandServedData(data: string, image: string, bytes: number, sha256: string): ImageServedData {
  const [requestId, quotaUsed, quotaLimit] = JSON.parse(data) as [number, number, number];
  return { requestId, image, bytes, sha256, quotaUsed, quotaLimit };
}

/**
 * The number of each image version, for a connection that writes rows: found in `image_versions`, or added to it
 * (in a statement of its own, committed at once, unless the caller holds a transaction). A number once known is
 * kept, since the table is append-only; one found inside a caller's transaction is not, since a rollback could
 * take its row away.
 */
export function imageVersionNumbers(db: Database): (row: ServedImageRow) => number {
  /** by image name: the versions of it seen, the latest first */
  const known = new Map<string, Array<{ sha256: string; bytes: number; version: number }>>();
  const add = db.prepare<[string, number, string]>(
    'INSERT OR IGNORE INTO image_versions (image, bytes, sha256) VALUES (?, ?, ?)',
  );
  const find = db
    .prepare<[string, number, string], number>(
      'SELECT version FROM image_versions WHERE image = ? AND bytes = ? AND sha256 = ?',
    )
    .pluck();
  return (row) => {
    const [, image, bytes, sha256] = row;
    const versions = known.get(image);
    if (versions) {
      for (const seen of versions) if (seen.sha256 === sha256 && seen.bytes === bytes) return seen.version;
    }
    add.run(image, bytes, sha256);
    const version = find.get(image, bytes, sha256);
    if (version === undefined) throw new Error(`image_versions lost the version of ${image} just added`);
    if (!db.inTransaction) {
      if (versions) versions.unshift({ sha256, bytes, version });
      else known.set(image, [{ sha256, bytes, version }]);
    }
    return version;
  };
}
