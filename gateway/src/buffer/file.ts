// The buffer's SQLite file: opened with the pragmas the outbox relies on, checked, migrated from the
// row-per-record layout, and moved aside (never deleted) when it is damaged.
import { existsSync, renameSync } from 'node:fs';
import Database from 'better-sqlite3';
import { gatewayErrors } from '../errors.ts';
import { decodeIds, decodeSegment, encodeSegment } from './codec.ts';
import { LANES, type StoredRecord } from './records.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    last_id INTEGER NOT NULL,
    records INTEGER NOT NULL,
    keys TEXT NOT NULL,
    data BLOB NOT NULL
  );
  CREATE TABLE IF NOT EXISTS segment_removed (segment_id INTEGER PRIMARY KEY, ids BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

/** Damage to the file or to a segment in it: SQLite's own findings, or a segment that does not decode. */
export function isCorruption(err: unknown): boolean {
  if (gatewayErrors.is(err, 'GW_BUFFER_CORRUPT')) return true;
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_NOTADB' || (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT'));
}

/** What was found wrong, for BufferRecovery.reason (the detail of our own error, SQLite's message otherwise). */
export function corruptionReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const ours = `${gatewayErrors.catalog.GW_BUFFER_CORRUPT.message}: `;
  return gatewayErrors.is(err, 'GW_BUFFER_CORRUPT') && text.startsWith(ours) ? text.slice(ours.length) : text;
}

/** Opens the file and checks it; throws SQLite's error or GW_BUFFER_CORRUPT when it is damaged. */
export function openChecked(path: string): Database.Database {
  const db = new Database(path);
  try {
    // auto_vacuum only takes effect before the first table exists, so it is set before the schema.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    // Power-loss mode flushes the WAL itself, off the main thread (see wal-sync.ts).
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_autocheckpoint = 4096');
    db.pragma('journal_size_limit = 16777216');
    // better-sqlite3 builds SQLite with a 16 MB page cache; an append-mostly outbox needs little of it,
    // and on a small board every cached page is resident memory (the kernel caches the file anyway).
    db.pragma('cache_size = -2000');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw gatewayErrors.create('GW_BUFFER_CORRUPT', `quick_check: ${String(check)}`);
    db.exec(SCHEMA);
    migrateRows(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Buffers written before segments held a row per record (`outbox`): repack them, oldest first. */
function migrateRows(db: Database.Database): void {
  const old = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'outbox'").pluck().get();
  if (old === 0) return;
  const hasLane = (db.prepare('PRAGMA table_info(outbox)').all() as { name: string }[]).some((c) => c.name === 'lane');
  const chunkAfter = db.prepare(
    `SELECT id, topic, key, value, received_at AS receivedAt, event_id AS eventId, ${hasLane ? 'lane' : "'telemetry' AS lane"}
     FROM outbox WHERE id > ? ORDER BY id LIMIT 5000`,
  );
  const insert = db.prepare('INSERT INTO segments (id, last_id, records, keys, data) VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let after = 0; ; ) {
      const chunk = (chunkAfter.all(after) as StoredRecord[]).map((r) => ({ ...r, lane: LANES.includes(r.lane) ? r.lane : 'telemetry' }));
      if (chunk.length === 0) break;
      const first = chunk[0]!.id;
      after = chunk.at(-1)!.id;
      insert.run(first, after, chunk.length, JSON.stringify([...new Set(chunk.map((r) => r.key))]), encodeSegment(first, chunk));
    }
    db.exec('DROP TABLE outbox');
  })();
}

/** Renames the file and its -wal/-shm (or rollback journal) aside with one timestamp suffix; never deletes them. */
export function moveAside(path: string): string {
  const movedTo = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-journal', '-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
  }
  return movedTo;
}

/** Every segment row with its records (removed ones included) and the ids removed from it, in id order. */
export function* readSegments(db: Database.Database): Generator<{ id: number; records: StoredRecord[]; removed: Set<number> }> {
  const removedRows = new Map(db.prepare('SELECT segment_id, ids FROM segment_removed').raw().all() as [number, Buffer][]);
  for (const [id, data] of db.prepare('SELECT id, data FROM segments ORDER BY id').raw().iterate() as IterableIterator<[number, Buffer]>) {
    const removed = removedRows.get(id);
    yield { id, records: decodeSegment(id, data), removed: removed === undefined ? new Set() : decodeIds(id, removed) };
  }
}

/** The live records of a buffer file, in id order, read without opening it for writing (tests, tools). */
export function readBufferFile(path: string): StoredRecord[] {
  const db = new Database(path, { readonly: true });
  try {
    const out: StoredRecord[] = [];
    for (const { records, removed } of readSegments(db)) for (const r of records) if (!removed.has(r.id)) out.push(r);
    return out;
  } finally {
    db.close();
  }
}
