// Bytes written to disk per buffered message (SD-card wear), not a test: prints figures and the ratio
// to the payload size, next to a reference measured in the same run (the same payloads appended to a
// plain file with one fsync per group commit). Payloads are device-sim events of every kind.
//   node gateway/bench/disk-writes.ts [messages=20000]
// Reads /proc/self/io write_bytes (bytes this process sent to the block layer); Linux only.
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIM_KINDS, createDevice } from '@city/device-sim';
import { openBuffer, type OutboxRecord } from '../src/buffer/index.ts';

const messages = Number(process.argv[2] ?? 20_000);
const forwardBatch = 500;
// 50 devices of every kind, as a neighbourhood's gateway sees them.
const devices = Array.from({ length: 50 }, (_, i) => createDevice(SIM_KINDS[i % SIM_KINDS.length]!, i, { seed: 1 }));
const payloads = Array.from({ length: messages }, (_, i) => Buffer.from(JSON.stringify(devices[i % devices.length]!.next())));
const payloadBytes = payloads.reduce((n, p) => n + p.length, 0) / messages;

function writeBytes(): number {
  const line = readFileSync('/proc/self/io', 'utf8').split('\n').find((l) => l.startsWith('write_bytes:'));
  return Number(line?.split(':')[1] ?? NaN);
}

function record(i: number): OutboxRecord {
  return {
    topic: 'city.vehicle.v1',
    key: `bus-${i % 50}`,
    value: payloads[i]!,
    receivedAt: Date.now(),
    eventId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    lane: 'telemetry',
  };
}

function reference(dir: string, group: number): number {
  const fd = openSync(join(dir, 'plain.log'), 'w');
  const before = writeBytes();
  for (let i = 0; i < messages; i += group) {
    for (let j = i; j < Math.min(messages, i + group); j++) writeSync(fd, record(j).value);
    fsyncSync(fd);
  }
  const written = writeBytes() - before;
  closeSync(fd);
  return written;
}

/**
 * Group commits in, forwarded batches out (the forwarder's removeIds + maintain). `keepingUp`: each
 * forward empties the buffer, as when Kafka is reachable; otherwise a backlog of `forwardBatch`
 * records always stays behind, as while replaying after an outage. Maintenance runs whenever the
 * buffer is drained (maintainEveryMs 0): this script compresses minutes of traffic into seconds.
 */
async function buffered(dir: string, group: number, durability: 'power-loss' | 'process-crash', keepingUp: boolean): Promise<number> {
  const buffer = openBuffer(join(dir, `buffer-${group}-${durability}-${keepingUp}.db`), durability, { maintainEveryMs: 0 });
  const before = writeBytes();
  for (let i = 0; i < messages; i += group) {
    buffer.append(Array.from({ length: Math.min(group, messages - i) }, (_, k) => record(i + k)));
    // What the gateway waits for before its PUBACKs (the WAL flush in power-loss mode).
    await new Promise<void>((resolve, reject) => buffer.sync((err) => (err ? reject(err) : resolve())));
    const depth = buffer.stats().depth;
    if (depth >= (keepingUp ? forwardBatch : 2 * forwardBatch)) {
      buffer.removeIds(buffer.peek(keepingUp ? depth : forwardBatch).map((r) => r.id));
      buffer.maintain();
    }
  }
  buffer.removeIds(buffer.peek(messages).map((r) => r.id));
  buffer.maintain();
  const written = writeBytes() - before;
  buffer.close();
  return written;
}

const dir = mkdtempSync(join(tmpdir(), 'gw-disk-writes-'));
try {
  console.log(`${messages} messages of ${payloadBytes.toFixed(0)} B payload on average; forwarder removes ${forwardBatch} at a time`);
  console.log('group  durability     forwarder   B/msg  ×payload  plain-file B/msg  ×payload');
  for (const group of [1, 10, 100, 1000]) {
    const ref = reference(dir, group) / messages;
    for (const durability of ['power-loss', 'process-crash'] as const) {
      for (const keepingUp of [true, false]) {
        const perMessage = (await buffered(dir, group, durability, keepingUp)) / messages;
        console.log(
          `${String(group).padStart(5)}  ${durability.padEnd(13)}  ${(keepingUp ? 'keeps up' : 'lags').padEnd(9)} ${perMessage.toFixed(0).padStart(6)}` +
            `  ${(perMessage / payloadBytes).toFixed(2).padStart(8)}  ${ref.toFixed(0).padStart(16)}  ${(ref / payloadBytes).toFixed(2).padStart(8)}`,
        );
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
