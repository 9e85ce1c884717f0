import { randomBytes } from 'node:crypto';
import fs, { existsSync, openSync, readdirSync, statSync, writeSync, closeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { exampleEvent, kafkaTopicSet, mqttTopic } from '@city/protocol';
import { decodeSegment } from './codec.ts';
import { createCompressorPool, openDirectZstd, type PackedSegment } from './compressor.ts';
import { openBuffer, readBufferFile, type Lane, type OutboxBuffer, type OutboxRecord } from './index.ts';
import type { Gateway, GatewayOptions } from '../index.ts';
import { testGateway } from '../../../test/support/gateway.ts';
import { connectDevice } from '../../../test/support/mqtt.ts';
import { onTeardown, tempDir as makeTempDir } from '../../../test/support/teardown.ts';

const tempDir = () => makeTempDir('gw-buffer-');

function open(path: string, limits: Parameters<typeof openBuffer>[2] = {}): OutboxBuffer {
  const buffer = openBuffer(path, 'process-crash', limits);
  onTeardown(() => buffer.close());
  return buffer;
}

let n = 0;
function record(lane: Lane, size = 10, receivedAt = 1000 + n): OutboxRecord {
  n++;
  return { topic: 't', key: `d${n % 3}`, value: Buffer.alloc(size, 65), receivedAt, eventId: `e${n}`, lane };
}

describe('buffer bounds', () => {
  it('evicts telemetry oldest-first, then dead letters, never emergency, and refuses what cannot fit', () => {
    const buffer = open(join(tempDir(), 'b.db'), { maxBytes: 100 });
    const telemetry = [record('telemetry'), record('telemetry'), record('telemetry')];
    buffer.append([...telemetry, record('deadletter'), record('emergency')]);
    expect(buffer.stats()).toMatchObject({ depth: 5, bytes: 50 });

    // 60 more bytes: 10 over the cap → the oldest telemetry record goes.
    const more = [record('emergency'), record('emergency'), record('emergency'), record('emergency'), record('emergency'), record('emergency')];
    expect(buffer.append(more)).toEqual({ refused: [], evicted: 1 });
    expect(buffer.peek(100).map((r) => r.eventId)).not.toContain(telemetry[0]!.eventId);
    expect(buffer.stats().bytes).toBe(100);

    // 30 more: the two remaining telemetry records and then the dead letter make room.
    expect(buffer.append([record('emergency'), record('emergency'), record('emergency')])).toEqual({ refused: [], evicted: 3 });
    expect(buffer.counters().evicted).toEqual({ emergency: 0, deadletter: 1, telemetry: 3 });
    expect(buffer.counters().depth).toEqual({ emergency: 10, deadletter: 0, telemetry: 0 });

    // Only emergency left: nothing evictable, so new records are refused (telemetry before emergency).
    const result = buffer.append([record('emergency'), record('telemetry')]);
    expect(result.refused.sort()).toEqual([0, 1]);
    expect(buffer.counters().refused).toEqual({ emergency: 1, deadletter: 0, telemetry: 1 });
    expect(buffer.stats()).toMatchObject({ depth: 10, bytes: 100 });

    // Once the forwarder removed some, emergency is stored again.
    buffer.removeIds(buffer.peek(2).map((r) => r.id));
    expect(buffer.append([record('emergency')]).refused).toEqual([]);
    expect(buffer.stats()).toMatchObject({ depth: 9, bytes: 90 });
  });

  it('keeps the free-disk floor by evicting as many bytes as arrive, and refuses emergency when nothing is evictable', () => {
    // A floor no disk can meet: every append must make room first.
    const buffer = open(join(tempDir(), 'b.db'), { minFreeDiskBytes: Number.MAX_SAFE_INTEGER });
    expect(buffer.append([record('emergency')]).refused).toEqual([0]);
    expect(buffer.counters().refused.emergency).toBe(1);
    expect(buffer.stats().depth).toBe(0);
  });

  it('drops records past their lane time-to-live and counts them', () => {
    const buffer = open(join(tempDir(), 'b.db'), { ttlMs: { telemetry: 1000 } });
    buffer.append([record('telemetry', 10, 1000), record('emergency', 10, 1000), record('telemetry', 10, 5000)]);
    expect(buffer.expire(3000)).toBe(1);
    expect(buffer.counters().expired).toEqual({ emergency: 0, deadletter: 0, telemetry: 1 });
    expect(buffer.stats()).toMatchObject({ depth: 2, bytes: 20, oldestReceivedAt: 1000 });
  });
});

describe('buffer bookkeeping', () => {
  it('keeps records in arrival order across reopen and removes only acknowledged ones', () => {
    const path = join(tempDir(), 'buffer.db');
    let buffer = openBuffer(path, 'power-loss');
    const record = (n: number) => ({ topic: 't', key: `d${n % 3}`, value: Buffer.from(`v${n}`), receivedAt: 1000 + n, eventId: `e${n}` });
    buffer.append([record(0), record(1), record(2)]);
    buffer.append([record(3)]);
    expect(buffer.nextSequence('health')).toBe(0);
    buffer.close();
    buffer = openBuffer(path, 'process-crash');
    expect(buffer.stats()).toEqual({ depth: 4, bytes: 8, oldestReceivedAt: 1000 });
    const first = buffer.peek(2);
    expect(first.map((r) => r.value.toString())).toEqual(['v0', 'v1']);
    buffer.remove(first[1]!.id);
    expect(buffer.peek(10).map((r) => r.eventId)).toEqual(['e2', 'e3']);
    expect(buffer.nextSequence('health')).toBe(1);
    buffer.close();
  });

  it('keeps running depth and bytes that match the table across reopen, and ids that only grow', () => {
    const path = join(tempDir(), 'b.db');
    let buffer = openBuffer(path, 'power-loss');
    buffer.append([record('telemetry', 7), record('emergency', 5), record('deadletter', 3)]);
    const top = buffer.maxId();
    buffer.removeIds(buffer.peek(3).map((r) => r.id));
    expect(buffer.stats()).toEqual({ depth: 0, bytes: 0, oldestReceivedAt: null });
    buffer.append([record('telemetry', 4)]);
    // SQLite alone would hand out id 1 again once the table is empty.
    expect(buffer.peek(1)[0]!.id).toBe(top + 1);
    buffer.append([record('telemetry', 6)]);
    buffer.close();
    buffer = open(path);
    expect(buffer.stats()).toMatchObject({ depth: 2, bytes: 10 });
    expect(buffer.counters().depth).toEqual({ emergency: 0, deadletter: 0, telemetry: 2 });
    expect(buffer.keysBetween(0, buffer.maxId()).length).toBeGreaterThan(0);
  });

  it('keeps records removed from the middle of a group commit removed across reopen, and their order', () => {
    const path = join(tempDir(), 'b.db');
    let buffer = openBuffer(path, 'power-loss');
    const batch = Array.from({ length: 6 }, () => record('telemetry', 10));
    buffer.append(batch);
    buffer.append([record('emergency', 10)]);
    const stored = buffer.peek(10);
    // The forwarder acknowledged records 2 and 4 of the first commit (live-first picks across devices).
    buffer.removeIds([stored[1]!.id, stored[3]!.id]);
    buffer.close();
    buffer = open(path);
    expect(buffer.peek(10).map((r) => r.eventId)).toEqual([0, 2, 4, 5, 6].map((i) => stored[i]!.eventId));
    expect(buffer.stats()).toMatchObject({ depth: 5, bytes: 50, oldestReceivedAt: stored[0]!.receivedAt });
    expect(readBufferFile(path).map((r) => r.id)).toEqual(buffer.peek(10).map((r) => r.id));
    expect(buffer.keysBetween(stored[4]!.id, stored[5]!.id)).toEqual([stored[5]!.key]);
  });

  it("gives eviction's space back by rewriting the group commit without the evicted records", () => {
    const path = join(tempDir(), 'b.db');
    const buffer = open(path, { maxBytes: 40 });
    buffer.append([record('telemetry', 10), record('emergency', 10), record('telemetry', 10)]);
    buffer.append([record('telemetry', 10), record('telemetry', 10)]);
    expect(buffer.counters().evicted.telemetry).toBe(1);
    const db = new Database(path, { readonly: true });
    try {
      // The first commit's row now holds 2 records, and nothing is listed as removed-but-present.
      expect(db.prepare('SELECT records FROM segments ORDER BY id').pluck().all()).toEqual([2, 2]);
      expect(db.prepare('SELECT count(*) FROM segment_removed').pluck().get()).toBe(0);
    } finally {
      db.close();
    }
    expect(readBufferFile(path).map((r) => r.lane)).toEqual(['emergency', 'telemetry', 'telemetry', 'telemetry']);
  });

  it('repacks a buffer file written with a row per record, oldest first', () => {
    const path = join(tempDir(), 'b.db');
    const db = new Database(path);
    db.exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
      received_at INTEGER NOT NULL, event_id TEXT, lane TEXT NOT NULL DEFAULT 'telemetry')`);
    const insert = db.prepare('INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)');
    insert.run(3, 'city.vehicle.v1', 'bus-1', Buffer.from('a'), 1000, 'e-3', 'telemetry');
    insert.run(7, 'city.emergency.v1', 'amb-1', Buffer.from('bb'), 1001, 'e-7', 'emergency');
    insert.run(9, 'city.deadletter.v1', 'cl-1', Buffer.from('ccc'), 1002, null, 'deadletter');
    db.close();
    const buffer = open(path);
    expect(buffer.peek(10).map(({ id, topic, key, value, receivedAt, eventId, lane }) => ({ id, topic, key, value: value.toString(), receivedAt, eventId, lane }))).toEqual([
      { id: 3, topic: 'city.vehicle.v1', key: 'bus-1', value: 'a', receivedAt: 1000, eventId: 'e-3', lane: 'telemetry' },
      { id: 7, topic: 'city.emergency.v1', key: 'amb-1', value: 'bb', receivedAt: 1001, eventId: 'e-7', lane: 'emergency' },
      { id: 9, topic: 'city.deadletter.v1', key: 'cl-1', value: 'ccc', receivedAt: 1002, eventId: null, lane: 'deadletter' },
    ]);
    expect(buffer.counters().depth).toEqual({ emergency: 1, deadletter: 1, telemetry: 1 });
    expect(buffer.maxId()).toBe(9);
  });

  it('compresses many commits, each into a segment that decodes to exactly its records', async () => {
    const buffer = open(join(tempDir(), 'b.db'));
    const jobs = Array.from({ length: 200 }, (_, j) => Array.from({ length: 1 + ((j * 37) % 300) }, () => record('telemetry', 1 + ((n * 13) % 900))));
    const segments = await Promise.all(
      jobs.map((records) => new Promise<Buffer>((resolve, reject) => buffer.compress(records, (err, segment) => (err ? reject(err) : resolve(segment))))),
    );
    segments.forEach((segment, j) => {
      expect(decodeSegment(1, segment).map((r) => [r.id, r.eventId, r.value.length])).toEqual(jobs[j]!.map((r, i) => [1 + i, r.eventId, r.value.length]));
    });
  });

  it('compresses on one context on this thread, and on the thread pool side by side where Node has no synchronous handle', async () => {
    expect(openDirectZstd()).toBeDefined();
    // Incompressible values: the frame outgrows one output chunk of the direct compressor.
    const big = Array.from({ length: 300 }, (_, i) => ({ ...record('telemetry'), value: randomBytes(200 + i) }));
    const jobs = [big, ...Array.from({ length: 50 }, (_, j) => Array.from({ length: 1 + ((j * 37) % 300) }, () => record('telemetry', 1 + ((n * 13) % 900))))];
    for (const mode of ['direct', 'streams'] as const) {
      const pool = createCompressorPool(4, mode);
      onTeardown(() => pool.close());
      // The direct context has the segment before compress() returns; the thread pool calls back later.
      let before = false;
      pool.compress(jobs[1]!, () => (before = true));
      expect(before).toBe(mode === 'direct');
      const segments = await Promise.all(jobs.map((records) => new Promise<Buffer>((resolve, reject) => pool.compress(records, (err, segment) => (err ? reject(err) : resolve(segment))))));
      segments.forEach((segment, j) => {
        expect(decodeSegment(1, segment).map((r) => [r.id, r.eventId, r.value.toString('hex')])).toEqual(jobs[j]!.map((r, i) => [1 + i, r.eventId, r.value.toString('hex')]));
      });
    }
  });

  it('keeps the records of a compressed commit as views into its packed blob, value for value', async () => {
    const dir = tempDir();
    const buffer = open(join(dir, 'b.db'));
    const records = Array.from({ length: 40 }, (_, i) => ({ ...record(i % 7 === 0 ? 'emergency' : 'telemetry', 5 + ((i * 31) % 200)), value: Buffer.from(`payload ${i} `.repeat(1 + (i % 9))) }));
    const { segment, packed } = await new Promise<{ segment: Buffer; packed: PackedSegment | undefined }>((resolve, reject) =>
      buffer.compress(records, (err, segment, packed) => (err ? reject(err) : resolve({ segment, packed }))),
    );
    expect(packed).toBeDefined();
    buffer.append(records, segment, packed);
    const held = buffer.peek(100);
    expect(held.map((r) => r.value.toString())).toEqual(records.map((r) => r.value.toString()));
    // Held in memory: views into the one blob, none of them the device's own buffer.
    expect(held.map((r) => r.value.buffer === packed!.data.buffer && r.value.byteOffset - packed!.data.byteOffset)).toEqual(packed!.valueAt);
    buffer.close();
    expect(readBufferFile(join(dir, 'b.db')).map((r) => [r.value.toString(), r.lane, r.eventId])).toEqual(records.map((r) => [r.value.toString(), r.lane, r.eventId]));
  });

  it('treats a packed commit (decoded only when read) exactly as the same records appended plainly', async () => {
    const dir = tempDir();
    const plain = open(join(dir, 'plain.db'), { maxBytes: 3000, ttlMs: { deadletter: 5 } });
    const lazy = open(join(dir, 'lazy.db'), { maxBytes: 3000, ttlMs: { deadletter: 5 } });
    const lanes: Lane[] = ['telemetry', 'emergency', 'deadletter'];
    const view = (b: OutboxBuffer) => ({
      peek: b.peek(1000).map(({ id, topic, key, value, receivedAt, eventId, lane, clockSynced }) => ({ id, topic, key, value: value.toString(), receivedAt, eventId, lane, clockSynced })),
      keys: b.keysBetween(0, b.maxId()).sort(),
      stats: b.stats(),
      counters: b.counters(),
      maxId: b.maxId(),
    });
    for (let c = 0; c < 40; c++) {
      const records = Array.from({ length: 1 + (c % 9) }, (_, i) => ({
        ...record(lanes[(c + i) % 3]!, 5 + ((c * 7 + i * 13) % 90), 1000 + c),
        key: `d${(c + i) % 5}`,
        ...(i % 2 === 0 ? { clockSynced: c % 3 === 0 } : {}),
      }));
      const { segment, packed } = await new Promise<{ segment: Buffer; packed: PackedSegment | undefined }>((resolve, reject) =>
        lazy.compress(records, (err, segment, packed) => (err ? reject(err) : resolve({ segment, packed }))),
      );
      expect(lazy.append(records, segment, packed)).toEqual(plain.append(records));
      if (c % 4 === 3) {
        const ids = plain.peek(1000).filter((r) => r.id % 3 === 0).map((r) => r.id);
        plain.removeIds(ids);
        lazy.removeIds(ids);
      }
      if (c % 10 === 9) expect(lazy.expire(1000 + c)).toBe(plain.expire(1000 + c));
      expect(view(lazy)).toEqual(view(plain));
    }
    expect(plain.counters().evicted.telemetry).toBeGreaterThan(0);
    // Counters of evictions and expiries are the process's own; what is stored reads back the same.
    const { counters, ...before } = view(lazy);
    lazy.close();
    const { counters: reopenedCounters, ...after } = view(open(join(dir, 'lazy.db'), { maxBytes: 3000 }));
    expect(after).toEqual(before);
    expect(reopenedCounters.depth).toEqual(counters.depth);
  });

  it('calls back once the WAL is flushed in power-loss mode, and at once in process-crash mode', async () => {
    const dir = tempDir();
    const durable = openBuffer(join(dir, 'p.db'), 'power-loss');
    onTeardown(() => durable.close());
    durable.append([record('telemetry')]);
    const order: string[] = [];
    const flushed = new Promise<Error | null>((resolve) => durable.sync(resolve));
    order.push('returned');
    expect(await flushed).toBeNull();
    const quick = open(join(dir, 'q.db'));
    quick.append([record('telemetry')]);
    quick.sync(() => order.push('called back'));
    order.push('returned');
    expect(order).toEqual(['returned', 'called back', 'returned']);
  });

  it('reclaims space incrementally once drained (auto_vacuum=INCREMENTAL)', () => {
    const path = join(tempDir(), 'b.db');
    const buffer = open(path);
    for (let i = 0; i < 20; i++) buffer.append(Array.from({ length: 100 }, () => record('telemetry', 1000)));
    buffer.maintain();
    buffer.removeIds(buffer.peek(10_000).map((r) => r.id));
    buffer.maintain();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('auto_vacuum', { simple: true })).toBe(2);
      expect(db.pragma('freelist_count', { simple: true })).toBe(0);
    } finally {
      db.close();
    }
    expect(statSync(path).size).toBeLessThan(100_000);
  });
});

describe('buffer integrity', () => {
  it('moves a corrupt file aside with its journal, reports where, and opens a fresh buffer', () => {
    const dir = tempDir();
    const path = join(dir, 'b.db');
    const first = openBuffer(path, 'power-loss');
    for (let i = 0; i < 10; i++) first.append(Array.from({ length: 50 }, () => record('telemetry', 500)));
    first.close();
    // Scribble over the middle of the file, past the header: pages of the table become garbage.
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(8192, 0x5a), 0, 8192, 16_384);
    closeSync(fd);

    const buffer = open(path);
    expect(buffer.recovered).not.toBeNull();
    expect(buffer.recovered!.movedTo).toMatch(/b\.db\.corrupt-/);
    expect(existsSync(buffer.recovered!.movedTo)).toBe(true);
    expect(buffer.stats().depth).toBe(0);
    buffer.append([record('emergency')]);
    expect(buffer.stats().depth).toBe(1);
    // Nothing was wiped: the old file is still there beside the new one.
    expect(readdirSync(dir).filter((f) => f.includes('.corrupt-')).length).toBeGreaterThanOrEqual(1);
  });

  it('moves aside a file whose segment fails its zstd checksum, though SQLite finds the file sound', () => {
    const path = join(tempDir(), 'b.db');
    const first = openBuffer(path, 'power-loss');
    first.append(Array.from({ length: 50 }, () => record('telemetry', 100)));
    first.close();
    const db = new Database(path);
    const data = db.prepare('SELECT data FROM segments').pluck().get() as Buffer;
    data[Math.floor(data.length / 2)]! ^= 0xff;
    db.prepare('UPDATE segments SET data = ?').run(data);
    db.close();
    const buffer = open(path);
    expect(buffer.recovered?.reason).toMatch(/segment/);
    expect(existsSync(buffer.recovered!.movedTo)).toBe(true);
    expect(buffer.stats().depth).toBe(0);
  });

  it('moves aside a file that is not a database at all', () => {
    const dir = tempDir();
    const path = join(dir, 'b.db');
    const fd = openSync(path, 'w');
    writeSync(fd, Buffer.alloc(4096, 0x41));
    closeSync(fd);
    const buffer = open(path);
    expect(buffer.recovered?.reason).toBeTruthy();
    expect(existsSync(buffer.recovered!.movedTo)).toBe(true);
  });
});

describe('gateway with a bounded buffer (Kafka unreachable)', () => {
  // Kafka away (the default of testGateway): everything stays buffered.
  const gateway = (path: string, buffer: Partial<GatewayOptions['buffer']> = {}): Gateway =>
    testGateway({ gatewayId: 'gw-bounded', buffer: { path, ...buffer }, topics: kafkaTopicSet(`bounded${n}`) });

  it('evicts telemetry for emergency, then stops acknowledging emergency it cannot store, and counts both', async () => {
    const path = join(tempDir(), 'b.db');
    const gw = gateway(path, { maxBytes: 2000 });
    await gw.start();
    const client = await connectDevice(gw, 'bounded-1');
    for (let seq = 0; seq < 10; seq++) {
      const event = exampleEvent('vehicle', { deviceId: 'bus-b', seq, eventId: `bus-b-${seq}` });
      await client.publishAsync(mqttTopic('bus-b', 'vehicle'), JSON.stringify(event), { qos: 1 });
    }
    expect(gw.stats().bufferBytes).toBeLessThanOrEqual(2000);
    expect(gw.stats().evicted.telemetry).toBeGreaterThan(0);

    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const acked: string[] = [];
    let refused = false;
    for (let seq = 0; seq < 20 && !refused; seq++) {
      const eventId = `amb-b-${seq}`;
      const event = exampleEvent('emergency', { deviceId: 'amb-b', seq, eventId });
      const outcome = await Promise.race([
        client.publishAsync(mqttTopic('amb-b', 'emergency'), JSON.stringify(event), { qos: 1 }).then(() => 'acked' as const),
        closed.then(() => 'closed' as const),
      ]);
      if (outcome === 'acked') acked.push(eventId);
      else refused = true;
    }
    expect(refused).toBe(true);
    const stats = gw.stats();
    expect(stats.refused.emergency).toBe(1);
    expect(stats.evicted.emergency).toBe(0);
    expect(stats.evicted.telemetry).toBe(10);
    expect(stats.bufferBytes).toBeLessThanOrEqual(2000);
    await gw.close();
    // Every acknowledged emergency record is still in the buffer.
    expect(readBufferFile(path).filter((r) => r.lane === 'emergency').map((r) => r.eventId)).toEqual(acked);
  });

  it('acknowledges a publish in power-loss mode only after a WAL flush that began after it arrived', async () => {
    // Every fdatasync the buffer makes, timed and held back 200 ms, so a PUBACK that did not wait for
    // it would arrive first (the named import sees the spy once the builtin exports are synced).
    const flushes: { startedAt: number; doneAt?: number }[] = [];
    const realFdatasync = fs.fdatasync;
    vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      const flush: { startedAt: number; doneAt?: number } = { startedAt: performance.now() };
      flushes.push(flush);
      setTimeout(() => {
        realFdatasync(fd, (err) => {
          flush.doneAt = performance.now();
          callback(err);
        });
      }, 200);
    }) as typeof fs.fdatasync);
    syncBuiltinESMExports();
    onTeardown(() => {
      vi.restoreAllMocks();
      syncBuiltinESMExports();
    });
    const gw = gateway(join(tempDir(), 'b.db'), { durability: 'power-loss' });
    await gw.start();
    const client = await connectDevice(gw, 'durable-1');
    const event = exampleEvent('vehicle', { deviceId: 'bus-d', seq: 1, eventId: 'bus-d-1' });
    const sentAt = performance.now();
    await client.publishAsync(mqttTopic('bus-d', 'vehicle'), JSON.stringify(event), { qos: 1 });
    const ackedAt = performance.now();
    expect(flushes.some((f) => f.startedAt >= sentAt && f.doneAt !== undefined && f.doneAt <= ackedAt)).toBe(true);
  });

  it('honours the group commit count and window', async () => {
    // commitMaxRecords 1: every publish is its own commit.
    const one = gateway(join(tempDir(), 'b.db'), { commitMaxRecords: 1, commitWindowMs: 1000 });
    await one.start();
    const c1 = await connectDevice(one, 'commit-1');
    await Promise.all(
      [0, 1, 2, 3].map((seq) =>
        c1.publishAsync(mqttTopic('bus-c', 'vehicle'), JSON.stringify(exampleEvent('vehicle', { deviceId: 'bus-c', seq, eventId: `c-${seq}` })), { qos: 1 }),
      ),
    );
    expect(one.stats()).toMatchObject({ accepted: 4, groupCommits: 4 });

    // A window holds the PUBACK until the window closes (a lower bound, so load cannot break it).
    const windowed = gateway(join(tempDir(), 'b.db'), { commitMaxRecords: 1000, commitWindowMs: 400 });
    await windowed.start();
    const c2 = await connectDevice(windowed, 'commit-2');
    const started = performance.now();
    await c2.publishAsync(mqttTopic('bus-c', 'vehicle'), JSON.stringify(exampleEvent('vehicle', { deviceId: 'bus-c', seq: 9, eventId: 'c-9' })), { qos: 1 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(350);
    expect(windowed.stats()).toMatchObject({ accepted: 1, groupCommits: 1 });
  });

  it('reports a corrupt buffer file it moved aside, and keeps working', async () => {
    const dir = tempDir();
    const path = join(dir, 'b.db');
    const fd = openSync(path, 'w');
    writeSync(fd, Buffer.alloc(8192, 0x42));
    closeSync(fd);
    const gw = gateway(path);
    const reports: Error[] = [];
    gw.on('bufferCorrupt', (err) => reports.push(err));
    await gw.start();
    expect(gw.stats().bufferCorrupt).toBe(1);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.message).toMatch(/GW_BUFFER_CORRUPT|moved aside/);
    expect(reports[0]!.message).toContain(join(dir, 'b.db.corrupt-'));
    expect(readdirSync(dir).some((f) => f.startsWith('b.db.corrupt-'))).toBe(true);
  });
});

describe('clock state of receive stamps in the buffer', () => {
  it('keeps each record\'s clock state across reopen, and reads a segment written before it existed as unknown', () => {
    const path = join(tempDir(), 'b.db');
    let buffer = openBuffer(path, 'process-crash');
    buffer.append([
      { ...record('telemetry'), clockSynced: true },
      { ...record('emergency'), clockSynced: false },
      record('deadletter'),
    ]);
    buffer.close();
    buffer = open(path);
    expect(buffer.peek(10).map((r) => [r.lane, r.clockSynced])).toEqual([
      ['telemetry', true],
      ['emergency', false],
      ['deadletter', undefined],
    ]);
    // The layout before: per record u32 id offset | u8 lane (0..2) | f64 receivedAt | u16 topic | u16 key | u16 eventId | u32 value.
    const old = Buffer.alloc(23 + 1 + 2 + 2 + 1);
    old.writeUInt32LE(0, 0);
    old[4] = 1; // deadletter
    old.writeDoubleLE(1234, 5);
    old.writeUInt16LE(1, 13);
    old.writeUInt16LE(2, 15);
    old.writeUInt16LE(2, 17);
    old.writeUInt32LE(1, 19);
    old.write('tk1e1v', 23);
    const [decoded] = decodeSegment(40, old);
    expect(decoded).toEqual({ id: 40, topic: 't', key: 'k1', eventId: 'e1', value: Buffer.from('v'), receivedAt: 1234, lane: 'deadletter' });
    expect('clockSynced' in decoded!).toBe(false);
  });
});
