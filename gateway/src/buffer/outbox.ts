// The outbox: the buffer's records in its SQLite file, with an in-memory index of every segment so that
// nothing scans the file. A record is appended in a group commit before its device is acknowledged,
// and deleted only after Kafka acknowledged it.
//
// Segments. A group commit is stored as one row holding all its records packed in one blob (codec.ts),
// not a row per record: SQLite's per-row cost (~5 µs here, more than parsing and validating the
// message) becomes one insert per commit, and the rows' pages fill completely. Records keep their own
// ids (one range per segment, ranges never overlap), so everything above this module still sees
// records. A segment is deleted once every record in it is gone; records removed from a segment that
// still holds others are listed in `segment_removed` (by the forwarder, in the same transaction as its
// other deletes) or, when eviction or expiry needs the space back, the segment is rewritten without them.
//
// Bounded, with lanes. When the byte cap or the free-disk floor is reached, room is made by evicting
// the oldest records of the lowest lane first: telemetry, then dead letters. Emergency records are
// never evicted: when one cannot be stored the append refuses it, the device gets no PUBACK and
// resends. Every eviction, expiry and refusal is counted by lane.
//
// SD-card care. Segment blobs are compressed with zstd, so the disk sees a fraction of the payload
// bytes and the same disk holds a longer outage. auto_vacuum=INCREMENTAL (only effective on a new
// file) lets freed pages be returned without a full VACUUM rewrite; but a page freed by a forwarded
// batch is reused by the next inserts anyway, so vacuuming while traffic flows would only add writes.
// `maintain()` therefore vacuums and TRUNCATE-checkpoints only when the buffer is drained (at most once
// per `maintainEveryMs`). That is also what keeps writes near 1× the record size: once the buffer is
// empty, incremental_vacuum shrinks the database, and a checkpoint skips WAL frames of pages past the
// new end, so records that were stored and forwarded between two checkpoints are written once (to the
// WAL) and never copied into the database file. The passive autocheckpoint is raised to 4096 pages
// (16 MiB) so it rarely fires while the forwarder keeps up; it still bounds the WAL during an outage,
// and journal_size_limit trims the WAL file after a burst.
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { gatewayErrors } from '../errors.ts';
import { compressPacked, decodeSegment, encodeIds, encodeSegment } from './codec.ts';
import { createCompressorPool, type CompressCallback, type PackedSegment } from './compressor.ts';
import { corruptionReason, isCorruption, moveAside, openChecked, readSegments } from './file.ts';
import { LANES, laneTotal, zeroLanes, type Durability, type Lane, type LaneCounts, type OutboxRecord, type StoredRecord } from './records.ts';
import { createWalSync } from './wal-sync.ts';

const EVICTABLE: readonly Lane[] = ['telemetry', 'deadletter'];

export interface BufferStats {
  depth: number;
  /** Payload bytes held (the byte cap applies to this figure). */
  bytes: number;
  oldestReceivedAt: number | null;
}

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
  /**
   * Packs and compresses records about to be appended, on the buffer's own long-lived zstd context
   * (compressor.ts).
   */
  compress(records: readonly OutboxRecord[], callback: CompressCallback): void;
  /**
   * Appends records in one transaction; survives a process crash when it returns, a power cut after
   * `sync`. `segment`: these records already packed by `compress` (used unless some are refused);
   * `packed`: the uncompressed blob `compress` made, which the records kept in memory then point into.
   */
  append(records: readonly OutboxRecord[], segment?: Buffer, packed?: PackedSegment): AppendResult;
  /**
   * Calls back once everything appended so far is durable per the durability mode (power-loss: an
   * fdatasync of the WAL on the thread pool; process-crash: at once).
   */
  sync(callback: (err: Error | null) => void): void;
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
  /** Closes the file, the WAL descriptor and the compressors. */
  close(): void;
}

/** One segment row as held in memory: live figures, and its records once read. */
interface BufferSegment {
  /** Row id: the id of its first record as written. */
  id: number;
  last: number;
  depth: LaneCounts;
  bytes: number;
  /** Ids of records gone from the row but still in its blob. */
  removed: Set<number>;
  records: StoredRecord[] | undefined;
  /**
   * A cached segment appended from a packed commit: its uncompressed blob, decoded into records only
   * when something reads them. Records made at append and held in the cache lived long enough to be
   * promoted (and freed only by a full collection) while Kafka was away and nothing read them.
   */
  packed: Buffer | undefined;
}

export function openBuffer(path: string, durability: Durability, limits: Partial<BufferLimits> = {}): OutboxBuffer {
  return openBufferChecked(path, durability, limits, null);
}

function openBufferChecked(path: string, durability: Durability, limits: Partial<BufferLimits>, movedBefore: BufferRecovery | null): OutboxBuffer {
  const maxBytes = limits.maxBytes ?? 0;
  const minFreeDiskBytes = limits.minFreeDiskBytes ?? 0;
  const ttlMs = limits.ttlMs ?? {};
  const maintainEveryMs = limits.maintainEveryMs ?? 1000;
  let recovered: BufferRecovery | null = movedBefore;
  let db: Database.Database;
  try {
    try {
      db = openChecked(path);
    } catch (err) {
      if (!isCorruption(err)) throw err;
      recovered = { movedTo: moveAside(path), reason: corruptionReason(err) };
      db = openChecked(path);
    }
  } catch (err) {
    throw gatewayErrors.create('GW_BUFFER_OPEN', `${path}: ${(err as Error).message}`, err);
  }

  const insertSegment = db.prepare('INSERT INTO segments (id, last_id, records, keys, data) VALUES (?, ?, ?, ?, ?)');
  const rewriteSegment = db.prepare('UPDATE segments SET records = ?, keys = ?, data = ? WHERE id = ?');
  const deleteSegment = db.prepare('DELETE FROM segments WHERE id = ?');
  const readSegment = db.prepare('SELECT data FROM segments WHERE id = ?').pluck();
  const readKeys = db.prepare('SELECT keys FROM segments WHERE id = ?').pluck();
  const saveRemoved = db.prepare('INSERT OR REPLACE INTO segment_removed (segment_id, ids) VALUES (?, ?)');
  const dropRemoved = db.prepare('DELETE FROM segment_removed WHERE segment_id = ?');
  const bumpSequence = db.prepare(
    `INSERT INTO sequences (name, value) VALUES (?, 0)
     ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`,
  );

  // Records read from segments, most recently used last; the newest segments are put here as they
  // are written, so a forwarder that keeps up never reads the file back.
  const CACHE_SEGMENTS = 32;
  const cache = new Map<number, BufferSegment>();
  const touch = (s: BufferSegment) => {
    cache.delete(s.id);
    cache.set(s.id, s);
    while (cache.size > CACHE_SEGMENTS) {
      const [, evicted] = cache.entries().next().value!;
      cache.delete(evicted.id);
      evicted.records = undefined;
      evicted.packed = undefined;
    }
  };
  const recordsOf = (s: BufferSegment): StoredRecord[] => {
    if (s.records === undefined) {
      // A packed blob numbers its records from 0, so it decodes as the row does.
      s.records = decodeSegment(s.id, s.packed ?? (readSegment.get(s.id) as Buffer));
      s.packed = undefined;
    }
    touch(s);
    return s.records;
  };

  // Every segment's live figures, in id order, read at open (and after a failed transaction) so
  // nothing else scans the file.
  let segments: BufferSegment[] = [];
  const depth = zeroLanes();
  let bytes = 0;
  let highestId = 0;
  const load = () => {
    segments = [];
    for (const s of cache.values()) {
      s.records = undefined;
      s.packed = undefined;
    }
    cache.clear();
    for (const lane of LANES) depth[lane] = 0;
    bytes = 0;
    for (const { id, records, removed } of readSegments(db)) {
      const s: BufferSegment = { id, last: records.at(-1)?.id ?? id, depth: zeroLanes(), bytes: 0, removed, records: undefined, packed: undefined };
      for (const r of records) {
        if (removed.has(r.id)) continue;
        s.depth[r.lane]++;
        s.bytes += r.value.length;
      }
      highestId = Math.max(highestId, s.last);
      segments.push(s);
      for (const lane of LANES) depth[lane] += s.depth[lane];
      bytes += s.bytes;
    }
  };
  try {
    load();
  } catch (err) {
    db.close();
    // A segment that does not decode (zstd checksum, layout) is damage SQLite's own check cannot see.
    if (!isCorruption(err) || movedBefore !== null) throw gatewayErrors.create('GW_BUFFER_OPEN', `${path}: ${(err as Error).message}`, err);
    return openBufferChecked(path, durability, limits, { movedTo: moveAside(path), reason: corruptionReason(err) });
  }
  // Ids only grow, also across an emptied buffer: the forwarder relies on "a higher id arrived
  // later". A drained buffer keeps its last id in `sequences`.
  highestId = Math.max(highestId, (db.prepare("SELECT value FROM sequences WHERE name = '_last_record_id'").pluck().get() as number | undefined) ?? 0);
  const saveHighest = db.prepare("INSERT OR REPLACE INTO sequences (name, value) VALUES ('_last_record_id', ?)");

  const counts = { evicted: zeroLanes(), expired: zeroLanes(), refused: zeroLanes() };
  const totalDepth = () => laneTotal(depth);
  let lastMaintain = 0;

  /** Index of the first segment whose last id is > `id`. */
  const firstAfter = (id: number): number => {
    let lo = 0;
    let hi = segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (segments[mid]!.last <= id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  /** Marks a record gone from its segment and from the running figures. */
  const dropRecord = (s: BufferSegment, r: StoredRecord, into?: LaneCounts) => {
    s.removed.add(r.id);
    s.depth[r.lane]--;
    s.bytes -= r.value.length;
    depth[r.lane]--;
    bytes -= r.value.length;
    if (into) into[r.lane]++;
  };

  /** Writes what `dropRecord` changed: deletes empty segments; rewrites or lists the rest. */
  const settle = (touched: Iterable<BufferSegment>, rewrite: boolean) => {
    for (const s of touched) {
      if (laneTotal(s.depth) === 0) {
        deleteSegment.run(s.id);
        dropRemoved.run(s.id);
        segments.splice(segments.indexOf(s), 1);
        cache.delete(s.id);
        s.records = undefined;
        s.packed = undefined;
      } else if (rewrite) {
        // Eviction and expiry need the space back: write the segment again without the removed records.
        const live = recordsOf(s).filter((r) => !s.removed.has(r.id));
        rewriteSegment.run(live.length, JSON.stringify([...new Set(live.map((r) => r.key))]), encodeSegment(s.id, live), s.id);
        dropRemoved.run(s.id);
        s.removed = new Set();
        s.records = live;
      } else {
        saveRemoved.run(s.id, encodeIds(s.id, s.removed));
      }
    }
  };

  // A statfs per group commit was a syscall per commit for a figure that moves slowly: it is read at
  // most once a second, less the payload bytes appended since (more than the disk sees: segments are
  // compressed), and read at once whenever that estimate comes within twice the floor.
  const disk = { at: Number.NEGATIVE_INFINITY, free: 0, appended: 0 };
  const freeDisk = (incoming: number): number => {
    if (minFreeDiskBytes === 0) return Number.POSITIVE_INFINITY;
    const now = Date.now();
    if (now - disk.at >= 1000 || disk.free - disk.appended - incoming < 2 * minFreeDiskBytes) {
      const fs = statfsSync(dirname(path));
      disk.at = now;
      disk.free = fs.bavail * fs.bsize;
      disk.appended = 0;
    }
    return disk.free - disk.appended;
  };

  /** Evicts oldest-first from the evictable lanes until `need` payload bytes are freed; returns bytes freed. */
  const evict = (need: number, touched: Set<BufferSegment>): number => {
    let freed = 0;
    for (const lane of EVICTABLE) {
      for (const s of segments) {
        if (freed >= need) return freed;
        if (s.depth[lane] === 0) continue;
        for (const r of recordsOf(s)) {
          if (freed >= need) break;
          if (r.lane !== lane || s.removed.has(r.id)) continue;
          dropRecord(s, r, counts.evicted);
          touched.add(s);
          freed += r.value.length;
        }
      }
    }
    return freed;
  };

  const appendTx = db.transaction((records: readonly OutboxRecord[], compressed: Buffer | undefined, packed: PackedSegment | undefined) => {
    const touched = new Set<BufferSegment>();
    const evictedBefore = LANES.reduce((n, lane) => n + counts.evicted[lane], 0);
    const incoming = records.reduce((sum, r) => sum + r.value.length, 0);
    // Over the cap, or under the disk floor: freed pages are reused by these inserts, so evicting as
    // many bytes as arrive keeps the file from growing.
    let need = 0;
    if (maxBytes > 0) need = Math.max(need, bytes + incoming - maxBytes);
    if (freeDisk(incoming) - incoming < minFreeDiskBytes) need = Math.max(need, incoming);
    disk.appended += incoming;
    let room = need > 0 ? evict(need, touched) - need : 0;
    settle(touched, true);
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
    const refused: number[] = [];
    // Every record of a packed commit is stored: the segment keeps the blob, and its records (their
    // values views into it, not the devices' own buffers, which then die young) are decoded from it
    // when read.
    if (packed !== undefined && skip.size === 0) {
      const first = highestId + 1;
      const last = highestId + records.length;
      const keys = new Set<string>();
      const segment: BufferSegment = { id: first, last, depth: zeroLanes(), bytes: 0, removed: new Set(), records: undefined, packed: packed.data };
      for (const r of records) {
        keys.add(r.key);
        segment.depth[r.lane ?? 'telemetry']++;
        segment.bytes += r.value.length;
      }
      insertSegment.run(first, last, records.length, JSON.stringify([...keys]), compressed ?? compressPacked(packed.data));
      return { refused, segment, evicted: LANES.reduce((n, lane) => n + counts.evicted[lane], 0) - evictedBefore };
    }
    const stored: StoredRecord[] = [];
    let nextId = highestId;
    records.forEach((r, i) => {
      if (skip.has(i)) refused.push(i);
      else stored.push({ ...r, id: ++nextId, lane: r.lane ?? 'telemetry' });
    });
    let segment: BufferSegment | undefined;
    if (stored.length > 0) {
      const first = stored[0]!.id;
      const keys = new Set<string>();
      for (const r of stored) keys.add(r.key);
      const data = compressed !== undefined && stored.length === records.length ? compressed : encodeSegment(first, stored);
      insertSegment.run(first, nextId, stored.length, JSON.stringify([...keys]), data);
      segment = { id: first, last: nextId, depth: zeroLanes(), bytes: 0, removed: new Set(), records: stored, packed: undefined };
      for (const r of stored) {
        segment.depth[r.lane]++;
        segment.bytes += r.value.length;
      }
    }
    return { refused, segment, evicted: LANES.reduce((n, lane) => n + counts.evicted[lane], 0) - evictedBefore };
  });

  const removeTx = db.transaction((ids: readonly number[]) => {
    const touched = new Set<BufferSegment>();
    for (const id of ids) {
      const s = segments[firstAfter(id - 1)];
      if (s === undefined || id < s.id || s.removed.has(id)) continue;
      const records = recordsOf(s);
      // Records of a segment are in id order, with gaps where eviction rewrote it.
      let lo = 0;
      let hi = records.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (records[mid]!.id < id) lo = mid + 1;
        else hi = mid;
      }
      const r = records[lo];
      if (r === undefined || r.id !== id) continue;
      dropRecord(s, r);
      touched.add(s);
    }
    settle(touched, false);
    if (segments.length === 0) saveHighest.run(highestId);
  });

  const expireTx = db.transaction((now: number) => {
    const touched = new Set<BufferSegment>();
    let n = 0;
    for (const lane of LANES) {
      const ttl = ttlMs[lane] ?? 0;
      if (ttl <= 0) continue;
      const cutoff = now - ttl;
      // Arrival order is close to receive-time order: walk oldest-first and stop at the first young one.
      walk: for (const s of segments) {
        if (s.depth[lane] === 0) continue;
        for (const r of recordsOf(s)) {
          if (r.lane !== lane || s.removed.has(r.id)) continue;
          if (r.receivedAt >= cutoff) break walk;
          dropRecord(s, r, counts.expired);
          touched.add(s);
          n++;
        }
      }
    }
    settle(touched, true);
    if (segments.length === 0) saveHighest.run(highestId);
    return n;
  });

  const wal = createWalSync(path, durability);
  const compressors = createCompressorPool();

  /** Runs a transaction; when it fails SQLite rolled it back, so the figures are read again from the file. */
  const guarded = <T>(tx: () => T): T => {
    const saved = { evicted: { ...counts.evicted }, expired: { ...counts.expired }, refused: { ...counts.refused } };
    try {
      return tx();
    } catch (err) {
      Object.assign(counts, saved);
      load();
      throw err;
    }
  };

  return {
    recovered,
    compress: (records, callback) => compressors.compress(records, callback),
    append(records, segment, packed) {
      if (records.length === 0) return { refused: [], evicted: 0 };
      let result: ReturnType<typeof appendTx>;
      try {
        result = guarded(() => appendTx(records, segment, packed));
      } catch (err) {
        for (const r of records) counts.refused[r.lane ?? 'telemetry']++;
        throw gatewayErrors.create('GW_BUFFER_WRITE', (err as Error).message, err);
      }
      const s = result.segment;
      if (s !== undefined) {
        segments.push(s);
        touch(s);
        for (const lane of LANES) depth[lane] += s.depth[lane];
        bytes += s.bytes;
        highestId = s.last;
      }
      for (const i of result.refused) counts.refused[records[i]!.lane ?? 'telemetry']++;
      return { refused: result.refused, evicted: result.evicted };
    },
    peek(limit, afterId = 0, upToId = Number.MAX_SAFE_INTEGER) {
      const out: StoredRecord[] = [];
      for (let i = firstAfter(afterId); i < segments.length && out.length < limit; i++) {
        const s = segments[i]!;
        if (s.id > upToId) break;
        for (const r of recordsOf(s)) {
          if (r.id <= afterId || s.removed.has(r.id)) continue;
          if (r.id > upToId || out.length >= limit) break;
          out.push(r);
        }
      }
      return out;
    },
    remove(lastId) {
      const ids: number[] = [];
      for (const s of segments) {
        if (s.id > lastId) break;
        for (const r of recordsOf(s)) if (r.id <= lastId) ids.push(r.id);
      }
      this.removeIds(ids);
    },
    removeIds(ids) {
      if (ids.length === 0) return;
      guarded(() => removeTx(ids));
    },
    maxId: () => highestId,
    keysBetween(afterId, upToId) {
      const keys = new Set<string>();
      for (let i = firstAfter(afterId); i < segments.length; i++) {
        const s = segments[i]!;
        if (s.id > upToId) break;
        if (s.records !== undefined || s.id <= afterId || s.last > upToId) {
          for (const r of recordsOf(s)) if (r.id > afterId && r.id <= upToId && !s.removed.has(r.id)) keys.add(r.key);
        } else {
          // A segment wholly inside the range: its key list, without reading the records.
          for (const key of JSON.parse(readKeys.get(s.id) as string) as string[]) keys.add(key);
        }
      }
      return [...keys];
    },
    expire(now = Date.now()) {
      return guarded(() => expireTx(now));
    },
    maintain() {
      const now = Date.now();
      if (totalDepth() > 0 || now - lastMaintain < maintainEveryMs) return;
      lastMaintain = now;
      db.pragma('incremental_vacuum');
      db.pragma('wal_checkpoint(TRUNCATE)');
    },
    sync: (callback) => wal.sync(callback),
    stats() {
      const d = totalDepth();
      if (d === 0) return { depth: 0, bytes, oldestReceivedAt: null };
      const s = segments[0]!;
      const oldest = recordsOf(s).find((r) => !s.removed.has(r.id))!;
      return { depth: d, bytes, oldestReceivedAt: oldest.receivedAt };
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
      wal.close();
      compressors.close();
    },
  };
}
