// The gateway's health as a gateway_health event, sent through the normal buffer → Kafka path.
import { randomUUID } from 'node:crypto';
import type { GatewayHealth, Location } from '@city/protocol';
import type { SystemSample } from './system.ts';

export interface HealthEventInput {
  gatewayId: string;
  seq: number;
  sample: SystemSample;
  bufferDepth: number;
  bufferBytes: number;
  oldestUnsentAgeMs: number | null;
  connectedDevices: number;
  inRate: number;
  outRate: number;
  /** Buffer counters since start, so nothing the buffer dropped or refused goes unreported. */
  totals?: { evicted: number; expired: number; refused: number; replayed: number; bufferCorrupt: number };
  location?: Location;
  /** Whether the clock is synchronised; undefined = unknown (the field is then left out). */
  clockSynced?: boolean | undefined;
  now?: number;
}

export function buildHealthEvent(input: HealthEventInput): GatewayHealth {
  const now = input.now ?? Date.now();
  const { sample } = input;
  const event: GatewayHealth = {
    kind: 'gateway_health',
    // Stored once and resent as stored, so a random id stays stable across retries and replays.
    eventId: randomUUID(),
    deviceId: input.gatewayId,
    seq: input.seq,
    dateObserved: new Date(now).toISOString(),
    cpuLoad: sample.cpuLoad,
    memoryUsed: sample.memoryUsed,
    memoryTotal: sample.memoryTotal,
    diskFree: sample.diskFree,
    uptime: process.uptime(),
    bufferDepth: input.bufferDepth,
    bufferBytes: input.bufferBytes,
    connectedDevices: input.connectedDevices,
    inRate: input.inRate,
    outRate: input.outRate,
  };
  if (input.totals !== undefined) {
    event.evictedTotal = input.totals.evicted;
    event.expiredTotal = input.totals.expired;
    event.refusedTotal = input.totals.refused;
    event.replayedTotal = input.totals.replayed;
    event.bufferCorruptTotal = input.totals.bufferCorrupt;
  }
  if (sample.temperature !== undefined) event.temperature = sample.temperature;
  if (input.oldestUnsentAgeMs !== null) event.oldestUnsentAge = input.oldestUnsentAgeMs / 1000;
  if (input.location !== undefined) event.location = input.location;
  if (input.clockSynced !== undefined) event.clockSynced = input.clockSynced;
  return event;
}

