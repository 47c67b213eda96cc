/**
 * Reads a server's history file the way an outsider would: a read-only open of the SQLite file, every event as
 * committed (or those `query` selects), closed again at once. Tests check what is on record here, not in the
 * server's in-memory feed.
 */
import type { StoredEvent } from '../../db/events.ts';
import { openDatabase } from '../../db/open-database.ts';
import { type EventQuery, readEvents } from '../../db/read-events.ts';

export function readHistoryFile(database: string, query: EventQuery = {}): StoredEvent[] {
  const db = openDatabase(database, { readonly: true });
  try {
    return readEvents(db, query);
  } finally {
    db.close();
  }
}
