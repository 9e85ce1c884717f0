// The durable store-and-forward buffer: an SQLite outbox in WAL mode. A record is appended in a
// group commit before its device is acknowledged, and deleted only after Kafka acknowledged it.
//
// Bounded, with lanes. When the byte cap or the free-disk floor is reached, room is made by evicting
// the oldest records of the lowest lane first: telemetry, then dead letters. Emergency records are
// never evicted: when one cannot be stored the append refuses it, the device gets no PUBACK and
// resends. Every eviction, expiry and refusal is counted by lane.
//
// SD-card care. auto_vacuum=INCREMENTAL (only effective on a new file) lets freed pages be returned
// without a full VACUUM rewrite; but a page freed by a forwarded batch is reused by the next inserts
// anyway, so vacuuming while traffic flows would only add writes. `maintain()` therefore vacuums and
// TRUNCATE-checkpoints only when the buffer is drained (at most once per `maintainEveryMs`). That is
// also what keeps writes near 1× the row size: once the table is empty, incremental_vacuum shrinks the
// database, and a checkpoint skips WAL frames of pages past the new end, so rows that were inserted
// and forwarded between two checkpoints are written once (to the WAL) and never copied into the
// database file. The passive autocheckpoint is raised to 4096 pages (16 MiB) so it rarely fires
// while the forwarder keeps up; it still bounds the WAL during an outage, and journal_size_limit
// trims the WAL file after a burst.
import { existsSync, renameSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { gatewayErrors } from './errors.ts';

export const DURABILITY = {
  /** fsync on every group commit: an acknowledged message survives a power cut. */
  powerLoss: 'power-loss',
  /** no fsync per commit: survives a process crash, may lose the last commits on power loss. */
  processCrash: 'process-crash',
} as const;
export type Durability = (typeof DURABILITY)[keyof typeof DURABILITY];

/** Lanes from most to least protected; eviction takes from the end of this list first. */
export const LANES = ['emergency', 'deadletter', 'telemetry'] as const;
export type Lane = (typeof LANES)[number];
const EVICTABLE: readonly Lane[] = ['telemetry', 'deadletter'];

export interface OutboxRecord {
  topic: string;
  /** Kafka record key: the device id (or the MQTT client id when a dead letter has no device id). */
  key: string;
  value: Buffer;
  receivedAt: number;
  eventId: string | null;
  /** Defaults to telemetry. */
  lane?: Lane;
}

export interface StoredRecord extends OutboxRecord {
  id: number;
  lane: Lane;
}

export interface BufferStats {
  depth: number;
  /** Payload bytes held (the byte cap applies to this figure). */
  bytes: number;
  oldestReceivedAt: number | null;
}

export type LaneCounts = Record<Lane, number>;

export interface BufferCounters {
  /** Records removed to make room, by lane (never emergency). */
  evicted: LaneCounts;
  /** Records removed because they outlived their lane's time-to-live. */
  expired: LaneCounts;
  /** Records the buffer would not or could not store (their devices were not acknowledged). */
  refused: LaneCounts;
  /** Records held now, by lane. */
  depth: LaneCounts;
}

export interface BufferLimits {
  /** Cap on payload bytes held; 0 = no cap. */
  maxBytes: number;
  /** Keep at least this much free space on the buffer's file system; 0 = no floor. */
  minFreeDiskBytes: number;
  /** Time-to-live per lane in ms; absent or 0 = forever. */
  ttlMs: Partial<Record<Lane, number>>;
  /** Least time between two drained-buffer maintenances (vacuum + TRUNCATE checkpoint). */
  maintainEveryMs: number;
}

export interface BufferRecovery {
  /** Where the unreadable buffer file was moved (its -wal/-shm beside it with the same suffix). */
  movedTo: string;
  reason: string;
}

export interface AppendResult {
  /** Indexes (into the appended array) of records not stored; their devices must not be acknowledged. */
  refused: number[];
  evicted: number;
}

export interface OutboxBuffer {
  /** Set when the file found at open failed its integrity check and was moved aside. */
  readonly recovered: BufferRecovery | null;
  /** Appends records in one transaction; durable when it returns (per the durability mode). */
  append(records: readonly OutboxRecord[]): AppendResult;
  /** The oldest records with `afterId` < id ≤ `upToId`, in arrival order. */
  peek(limit: number, afterId?: number, upToId?: number): StoredRecord[];
  /** Deletes every record with id ≤ `lastId`. */
  remove(lastId: number): void;
  /** Deletes the given records (those Kafka acknowledged); ids already gone are skipped. */
  removeIds(ids: readonly number[]): void;
  /** Highest id stored so far (0 when never written). */
  maxId(): number;
  /** Distinct keys of records with `afterId` < id ≤ `upToId`. */
  keysBetween(afterId: number, upToId: number): string[];
  /** Drops records past their lane's time-to-live; returns how many. */
  expire(now?: number): number;
  /** Space reclaim and WAL truncation when drained (cheap no-op otherwise). */
  maintain(): void;
  stats(): BufferStats;
  counters(): BufferCounters;
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
  lane: Lane;
}

const zeroLanes = (): LaneCounts => ({ emergency: 0, deadletter: 0, telemetry: 0 });

function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT'));
}

/** Opens the file and checks it; throws the SQLite error on corruption. */
function openChecked(path: string, durability: Durability): Database.Database {
  const db = new Database(path);
  try {
    // auto_vacuum only takes effect before the first table exists, so it is set before the schema.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === DURABILITY.powerLoss ? 'FULL' : 'NORMAL'}`);
    db.pragma('wal_autocheckpoint = 4096');
    db.pragma('journal_size_limit = 16777216');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw Object.assign(new Error(`quick_check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
    db.exec(`
      CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        event_id TEXT,
        lane TEXT NOT NULL DEFAULT 'telemetry'
      );
      CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `);
    const columns = db.prepare('PRAGMA table_info(outbox)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'lane')) db.exec(`ALTER TABLE outbox ADD COLUMN lane TEXT NOT NULL DEFAULT 'telemetry'`);
    // Eviction and expiry walk one lane oldest-first.
    db.exec('CREATE INDEX IF NOT EXISTS outbox_lane ON outbox (lane, id)');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Renames the file and its -wal/-shm aside with one timestamp suffix; never deletes them. */
function moveAside(path: string): string {
  const movedTo = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
  }
  return movedTo;
}

export function openBuffer(path: string, durability: Durability, limits: Partial<BufferLimits> = {}): OutboxBuffer {
  const maxBytes = limits.maxBytes ?? 0;
  const minFreeDiskBytes = limits.minFreeDiskBytes ?? 0;
  const ttlMs = limits.ttlMs ?? {};
  const maintainEveryMs = limits.maintainEveryMs ?? 1000;
  let recovered: BufferRecovery | null = null;
  let db: Database.Database;
  try {
    try {
      db = openChecked(path, durability);
    } catch (err) {
      if (!isCorruption(err)) throw err;
      recovered = { movedTo: moveAside(path), reason: (err as Error).message };
      db = openChecked(path, durability);
    }
  } catch (err) {
    throw gatewayErrors.create('GW_BUFFER_OPEN', `${path}: ${(err as Error).message}`, err);
  }

  const insert = db.prepare(
    'INSERT INTO outbox (id, topic, key, value, received_at, event_id, lane) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const selectRange = db.prepare(
    'SELECT id, topic, key, value, received_at, event_id, lane FROM outbox WHERE id > ? AND id <= ? ORDER BY id LIMIT ?',
  );
  const delUpTo = db.prepare('DELETE FROM outbox WHERE id <= ? RETURNING lane, length(value) AS n');
  const delOne = db.prepare('DELETE FROM outbox WHERE id = ? RETURNING lane, length(value) AS n');
  const oldestInLane = db.prepare('SELECT id, length(value) AS n, received_at FROM outbox WHERE lane = ? ORDER BY id LIMIT ?');
  const oldest = db.prepare('SELECT received_at FROM outbox ORDER BY id LIMIT 1').pluck();
  const maxIdQuery = db.prepare("SELECT coalesce(max(id), 0) FROM outbox").pluck();
  const keysQuery = db.prepare('SELECT DISTINCT key FROM outbox WHERE id > ? AND id <= ?').pluck();
  const bumpSequence = db.prepare(
    `INSERT INTO sequences (name, value) VALUES (?, 0)
     ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`,
  );

  // Running figures, read once here so stats() never scans the table.
  const depth = zeroLanes();
  let bytes = 0;
  for (const row of db.prepare('SELECT lane, count(*) AS c, coalesce(sum(length(value)), 0) AS b FROM outbox GROUP BY lane').all() as {
    lane: Lane;
    c: number;
    b: number;
  }[]) {
    depth[row.lane] = row.c;
    bytes += row.b;
  }
  // Ids are handed out here rather than by SQLite, which reuses ids once the table empties: the
  // forwarder relies on "a higher id arrived later" within a process run.
  let highestId = maxIdQuery.get() as number;
  const counts = { evicted: zeroLanes(), expired: zeroLanes(), refused: zeroLanes() };
  const totalDepth = () => depth.emergency + depth.deadletter + depth.telemetry;
  let lastMaintain = 0;

  const freeDisk = (): number => {
    if (minFreeDiskBytes === 0) return Number.POSITIVE_INFINITY;
    const fs = statfsSync(dirname(path));
    return fs.bavail * fs.bsize;
  };

  /** Evicts oldest-first from the evictable lanes until `need` payload bytes are freed; returns bytes freed. */
  const evict = (need: number, removed: { lane: Lane; n: number }[]): number => {
    let freed = 0;
    for (const lane of EVICTABLE) {
      while (freed < need) {
        const rows = oldestInLane.all(lane, 256) as { id: number; n: number }[];
        if (rows.length === 0) break;
        for (const row of rows) {
          if (freed >= need) break;
          delOne.run(row.id);
          removed.push({ lane, n: row.n });
          freed += row.n;
        }
      }
    }
    return freed;
  };

  const appendTx = db.transaction((records: readonly OutboxRecord[]) => {
    const refused: number[] = [];
    const removed: { lane: Lane; n: number }[] = [];
    const stored: { lane: Lane; n: number; id: number }[] = [];
    let nextId = highestId;
    const incoming = records.reduce((sum, r) => sum + r.value.length, 0);
    // Over the cap, or under the disk floor: freed pages are reused by these inserts, so evicting as
    // many bytes as arrive keeps the file from growing.
    let need = 0;
    if (maxBytes > 0) need = Math.max(need, bytes + incoming - maxBytes);
    if (freeDisk() - incoming < minFreeDiskBytes) need = Math.max(need, incoming);
    let room = need > 0 ? evict(need, removed) - need : 0;
    // room < 0: not enough evictable bytes; refuse records (telemetry first) until the rest fits.
    const skip = new Set<number>();
    if (room < 0) {
      const order = records
        .map((r, i) => ({ i, lane: r.lane ?? 'telemetry', n: r.value.length }))
        .sort((a, b) => LANES.indexOf(b.lane) - LANES.indexOf(a.lane));
      for (const r of order) {
        if (room >= 0) break;
        skip.add(r.i);
        room += r.n;
      }
    }
    records.forEach((r, i) => {
      if (skip.has(i)) {
        refused.push(i);
        return;
      }
      const lane = r.lane ?? 'telemetry';
      insert.run(++nextId, r.topic, r.key, r.value, r.receivedAt, r.eventId, lane);
      stored.push({ lane, n: r.value.length, id: nextId });
    });
    return { refused, removed, stored };
  });

  const applyRemoved = (removed: readonly { lane: Lane; n: number }[], into?: LaneCounts) => {
    for (const r of removed) {
      depth[r.lane]--;
      bytes -= r.n;
      if (into) into[r.lane]++;
    }
  };

  const countIds = db.prepare('SELECT count(*) FROM outbox WHERE id IN (SELECT value FROM json_each(?))').pluck();
  // Without a WHERE clause SQLite frees the table's pages without rewriting each one first: a
  // drained buffer costs a few pages of WAL instead of a second copy of every forwarded row.
  const clearAll = db.prepare('DELETE FROM outbox');
  const deleteIdsTx = db.transaction((ids: readonly number[]): { lane: Lane; n: number }[] | 'all' => {
    if (ids.length === totalDepth() && countIds.get(JSON.stringify(ids)) === ids.length) {
      clearAll.run();
      return 'all';
    }
    const removed: { lane: Lane; n: number }[] = [];
    for (const id of ids) {
      const row = delOne.get(id) as { lane: Lane; n: number } | undefined;
      if (row) removed.push(row);
    }
    return removed;
  });

  const expireTx = db.transaction((now: number) => {
    const removed: { lane: Lane; n: number }[] = [];
    for (const lane of LANES) {
      const ttl = ttlMs[lane] ?? 0;
      if (ttl <= 0) continue;
      const cutoff = now - ttl;
      // Arrival order is close to receive-time order: walk oldest-first and stop at the first young one.
      for (;;) {
        const rows = oldestInLane.all(lane, 256) as { id: number; n: number; received_at: number }[];
        let stop = rows.length < 256;
        for (const row of rows) {
          if (row.received_at >= cutoff) {
            stop = true;
            break;
          }
          delOne.run(row.id);
          removed.push({ lane, n: row.n });
        }
        if (stop) break;
      }
    }
    return removed;
  });

  return {
    recovered,
    append(records) {
      if (records.length === 0) return { refused: [], evicted: 0 };
      let result: ReturnType<typeof appendTx>;
      try {
        result = appendTx(records);
      } catch (err) {
        for (const r of records) counts.refused[r.lane ?? 'telemetry']++;
        throw gatewayErrors.create('GW_BUFFER_WRITE', (err as Error).message, err);
      }
      applyRemoved(result.removed, counts.evicted);
      for (const s of result.stored) {
        depth[s.lane]++;
        bytes += s.n;
        highestId = Math.max(highestId, s.id);
      }
      for (const i of result.refused) counts.refused[records[i]!.lane ?? 'telemetry']++;
      return { refused: result.refused, evicted: result.removed.length };
    },
    peek(limit, afterId = 0, upToId = Number.MAX_SAFE_INTEGER) {
      return (selectRange.all(afterId, upToId, limit) as Row[]).map((row) => ({
        id: row.id,
        topic: row.topic,
        key: row.key,
        value: row.value,
        receivedAt: row.received_at,
        eventId: row.event_id,
        lane: row.lane,
      }));
    },
    remove(lastId) {
      applyRemoved(delUpTo.all(lastId) as { lane: Lane; n: number }[]);
    },
    removeIds(ids) {
      if (ids.length === 0) return;
      const removed = deleteIdsTx(ids);
      if (removed !== 'all') {
        applyRemoved(removed);
        return;
      }
      for (const lane of LANES) depth[lane] = 0;
      bytes = 0;
    },
    maxId: () => highestId,
    keysBetween(afterId, upToId) {
      return keysQuery.all(afterId, upToId) as string[];
    },
    expire(now = Date.now()) {
      const removed = expireTx(now);
      applyRemoved(removed, counts.expired);
      return removed.length;
    },
    maintain() {
      const now = Date.now();
      if (totalDepth() > 0 || now - lastMaintain < maintainEveryMs) return;
      lastMaintain = now;
      db.pragma('incremental_vacuum');
      db.pragma('wal_checkpoint(TRUNCATE)');
    },
    stats() {
      const d = totalDepth();
      return { depth: d, bytes, oldestReceivedAt: d === 0 ? null : (oldest.get() as number) };
    },
    counters() {
      return {
        evicted: { ...counts.evicted },
        expired: { ...counts.expired },
        refused: { ...counts.refused },
        depth: { ...depth },
      };
    },
    nextSequence(name) {
      return (bumpSequence.get(name) as { value: number }).value;
    },
    close() {
      if (db.open) db.close();
    },
  };
}
