// The durable store-and-forward buffer: an SQLite outbox in WAL mode. A record is appended in a
// group commit before its device is acknowledged, and deleted only after Kafka acknowledged it.
import Database from 'better-sqlite3';
import { gatewayErrors } from './errors.ts';

export const DURABILITY = {
  /** fsync on every group commit: an acknowledged message survives a power cut. */
  powerLoss: 'power-loss',
  /** no fsync per commit: survives a process crash, may lose the last commits on power loss. */
  processCrash: 'process-crash',
} as const;
export type Durability = (typeof DURABILITY)[keyof typeof DURABILITY];

export interface OutboxRecord {
  topic: string;
  /** Kafka record key: the device id (or the MQTT client id when a dead letter has no device id). */
  key: string;
  value: Buffer;
  receivedAt: number;
  eventId: string | null;
}

export interface StoredRecord extends OutboxRecord {
  id: number;
}

export interface BufferStats {
  depth: number;
  bytes: number;
  oldestReceivedAt: number | null;
}

export interface OutboxBuffer {
  /** Appends records in one transaction; durable when it returns (per the durability mode). */
  append(records: readonly OutboxRecord[]): void;
  /** The oldest records, in arrival order. */
  peek(limit: number): StoredRecord[];
  /** Deletes every record with id ≤ `lastId` (the records of a forwarded peek). */
  remove(lastId: number): void;
  stats(): BufferStats;
  /** Next value of a persisted counter (e.g. the gateway's own health event sequence). */
  nextSequence(name: string): number;
  close(): void;
}

interface Row {
  id: number;
  topic: string;
  key: string;
  value: Buffer;
  received_at: number;
  event_id: string | null;
}

export function openBuffer(path: string, durability: Durability): OutboxBuffer {
  let db: Database.Database;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === DURABILITY.powerLoss ? 'FULL' : 'NORMAL'}`);
    db.exec(`
      CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        event_id TEXT
      );
      CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `);
  } catch (err) {
    throw gatewayErrors.create('GW_BUFFER_OPEN', `${path}: ${(err as Error).message}`, err);
  }

  const insert = db.prepare(
    'INSERT INTO outbox (topic, key, value, received_at, event_id) VALUES (?, ?, ?, ?, ?)',
  );
  const appendAll = db.transaction((records: readonly OutboxRecord[]) => {
    for (const r of records) insert.run(r.topic, r.key, r.value, r.receivedAt, r.eventId);
  });
  const select = db.prepare('SELECT id, topic, key, value, received_at, event_id FROM outbox ORDER BY id LIMIT ?');
  const del = db.prepare('DELETE FROM outbox WHERE id <= ?');
  const statsQuery = db.prepare(
    'SELECT count(*) AS depth, coalesce(sum(length(value)), 0) AS bytes, min(received_at) AS oldest FROM outbox',
  );
  const bumpSequence = db.prepare(
    `INSERT INTO sequences (name, value) VALUES (?, 0)
     ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`,
  );

  return {
    append(records) {
      if (records.length === 0) return;
      try {
        appendAll(records);
      } catch (err) {
        throw gatewayErrors.create('GW_BUFFER_WRITE', (err as Error).message, err);
      }
    },
    peek(limit) {
      return (select.all(limit) as Row[]).map((row) => ({
        id: row.id,
        topic: row.topic,
        key: row.key,
        value: row.value,
        receivedAt: row.received_at,
        eventId: row.event_id,
      }));
    },
    remove(lastId) {
      del.run(lastId);
    },
    stats() {
      const row = statsQuery.get() as { depth: number; bytes: number; oldest: number | null };
      return { depth: row.depth, bytes: row.bytes, oldestReceivedAt: row.oldest };
    },
    nextSequence(name) {
      return (bumpSequence.get(name) as { value: number }).value;
    },
    close() {
      if (db.open) db.close();
    },
  };
}
