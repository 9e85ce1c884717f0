// The segment codec: a group commit's records packed into one blob (per record a fixed head, then topic,
// key, event id and value bytes), compressed with zstd. Damage shows as GW_BUFFER_CORRUPT.
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { gatewayErrors } from '../errors.ts';
import { LANES, type OutboxRecord, type StoredRecord } from './records.ts';

// head: u32 id − segment id | u8 lane and clock | f64 receivedAt | u16 topic | u16 key | u16 eventId (0xffff: none) | u32 value
const HEAD = 23;
// The lane byte's low bits hold the lane; its top bits the clock state of receivedAt. Buffers written
// before had 0 there, which reads as unknown, so they open unchanged.
const LANE_MASK = 0x3f;
const CLOCK_KNOWN = 0x80;
const CLOCK_SYNCED = 0x40;
const NO_EVENT_ID = 0xffff;
const ZSTD_MAGIC = 0xfd2fb528;
/**
 * Level 1: ~0.7 µs per record here, and device JSON shrinks several times over. The frame checksum
 * makes a damaged segment fail to decode rather than yield wrong records.
 */
export const ZSTD_FAST = { params: { [zlibConstants.ZSTD_c_compressionLevel]: 1, [zlibConstants.ZSTD_c_checksumFlag]: 1 } };

/** Packs records into one segment blob and compresses it here, on the calling thread. */
export function encodeSegment(first: number, records: readonly StoredRecord[]): Buffer {
  return compressPacked(packSegment(first, records));
}

/** Compresses a blob packSegment made, here, on the calling thread. */
export function compressPacked(packed: Buffer): Buffer {
  return zstdCompressSync(packed, ZSTD_FAST);
}

/**
 * Packs records uncompressed; ids are stored relative to `first`. `valueAt`, when given, receives
 * where each record's value starts in the blob. `first` = null: records not yet
 * stored (no ids, lane may be unset), packed as if their ids ran from 0 — the compressor's case,
 * which so needs no copy of each record.
 */
export function packSegment(first: number | null, records: readonly (OutboxRecord & { id?: number })[], valueAt?: number[]): Buffer {
  let size = 0;
  const lengths = new Array<number>(records.length * 3);
  records.forEach((r, i) => {
    const t = Buffer.byteLength(r.topic);
    const k = Buffer.byteLength(r.key);
    const e = r.eventId === null ? 0 : Buffer.byteLength(r.eventId);
    if (t >= 0xffff || k >= 0xffff || e >= 0xffff) throw gatewayErrors.create('GW_BUFFER_WRITE', `record ${r.id ?? i}: topic, key or event id longer than 65534 bytes`);
    lengths[i * 3] = t;
    lengths[i * 3 + 1] = k;
    lengths[i * 3 + 2] = e;
    size += HEAD + t + k + e + r.value.length;
  });
  const buf = Buffer.allocUnsafe(size);
  let o = 0;
  records.forEach((r, i) => {
    const t = lengths[i * 3]!;
    const k = lengths[i * 3 + 1]!;
    const e = lengths[i * 3 + 2]!;
    buf.writeUInt32LE(first === null ? i : r.id! - first, o);
    buf[o + 4] = LANES.indexOf(r.lane ?? 'telemetry') | (r.clockSynced === undefined ? 0 : CLOCK_KNOWN | (r.clockSynced ? CLOCK_SYNCED : 0));
    buf.writeDoubleLE(r.receivedAt, o + 5);
    buf.writeUInt16LE(t, o + 13);
    buf.writeUInt16LE(k, o + 15);
    buf.writeUInt16LE(r.eventId === null ? NO_EVENT_ID : e, o + 17);
    buf.writeUInt32LE(r.value.length, o + 19);
    o += HEAD;
    o += buf.write(r.topic, o);
    o += buf.write(r.key, o);
    if (r.eventId !== null) o += buf.write(r.eventId, o);
    if (valueAt !== undefined) valueAt[i] = o;
    o += r.value.copy(buf, o);
  });
  return buf;
}

/** The records packed in one segment row, in id order (values are views into the unpacked blob). */
export function decodeSegment(first: number, stored: Buffer): StoredRecord[] {
  let data = stored;
  if (stored.length >= 4 && stored.readUInt32LE(0) === ZSTD_MAGIC) {
    try {
      data = zstdDecompressSync(stored);
    } catch (err) {
      throw gatewayErrors.create('GW_BUFFER_CORRUPT', `segment ${first}: ${(err as Error).message}`, err);
    }
  }
  const out: StoredRecord[] = [];
  let o = 0;
  while (o < data.length) {
    const id = first + data.readUInt32LE(o);
    const flags = data[o + 4]!;
    const lane = LANES[flags & LANE_MASK];
    const receivedAt = data.readDoubleLE(o + 5);
    const t = data.readUInt16LE(o + 13);
    const k = data.readUInt16LE(o + 15);
    const e = data.readUInt16LE(o + 17);
    const v = data.readUInt32LE(o + 19);
    o += HEAD;
    if (lane === undefined || o + t + k + (e === NO_EVENT_ID ? 0 : e) + v > data.length) {
      throw gatewayErrors.create('GW_BUFFER_CORRUPT', `segment ${first}: record at byte ${o - HEAD} is malformed`);
    }
    const topic = data.toString('utf8', o, (o += t));
    const key = data.toString('utf8', o, (o += k));
    const eventId = e === NO_EVENT_ID ? null : data.toString('utf8', o, (o += e));
    const value = data.subarray(o, (o += v));
    const record: StoredRecord = { id, topic, key, value, receivedAt, eventId, lane };
    if ((flags & CLOCK_KNOWN) !== 0) record.clockSynced = (flags & CLOCK_SYNCED) !== 0;
    out.push(record);
  }
  return out;
}

/** Ids removed from a segment, stored relative to its first id. */
export function encodeIds(first: number, ids: Iterable<number>): Buffer {
  const list = [...ids];
  const buf = Buffer.allocUnsafe(list.length * 4);
  list.forEach((id, i) => buf.writeUInt32LE(id - first, i * 4));
  return buf;
}

export function decodeIds(first: number, buf: Buffer): Set<number> {
  const ids = new Set<number>();
  for (let o = 0; o + 4 <= buf.length; o += 4) ids.add(first + buf.readUInt32LE(o));
  return ids;
}
