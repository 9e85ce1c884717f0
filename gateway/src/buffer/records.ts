// What the buffer holds: records waiting for Kafka, each in a lane that decides what goes first when
// space runs out.

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
export type LaneCounts = Record<Lane, number>;

export interface OutboxRecord {
  topic: string;
  /** Kafka record key: the device id (or the MQTT client id when a dead letter has no device id). */
  key: string;
  value: Buffer;
  receivedAt: number;
  /** Whether the clock was synchronised when receivedAt was stamped; absent = unknown (and in older buffers). */
  clockSynced?: boolean;
  eventId: string | null;
  /** Defaults to telemetry. */
  lane?: Lane;
}

export interface StoredRecord extends OutboxRecord {
  id: number;
  lane: Lane;
}

export const zeroLanes = (): LaneCounts => ({ emergency: 0, deadletter: 0, telemetry: 0 });
export const laneTotal = (counts: LaneCounts): number => counts.emergency + counts.deadletter + counts.telemetry;
