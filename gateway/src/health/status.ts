// What the gateway says of itself at one moment, and the verdict /healthz and `gateway status` give.
import type { KafkaStateName } from '../forward/index.ts';
import type { ClockReading } from './clock.ts';
import type { SystemSample } from './system.ts';

/** Everything /healthz, /metrics and `gateway status` report, taken at one moment. */
export interface StatusSnapshot {
  gatewayId: string;
  state: string;
  /** False after a group commit failed, until one succeeds again. */
  bufferWritable: boolean;
  bufferError?: string;
  /**
   * Last known: reachable after Kafka acknowledged a batch; unreachable when the brokers do not answer;
   * topic-missing when they answer that a topic the gateway sends to does not exist.
   */
  kafka: KafkaStateName;
  /** With topic-missing: the topics that do not exist. */
  kafkaTopicsMissing?: string[];
  /** Why the last send failed (unreachable, topic-missing). */
  kafkaError?: string;
  /** gateway.stats(), with whatever counters the buffer adds (evictions, expiries, refusals). */
  stats: Readonly<Record<string, unknown>>;
  sample?: SystemSample;
  sampleFailures: number;
  inRate: number;
  outRate: number;
  uptime: number;
  /** Whether the clock is synchronised (receive stamps carry it); never makes the gateway unhealthy. */
  clock?: ClockReading;
}

export interface HealthVerdict {
  healthy: boolean;
  reasons: string[];
}

/**
 * Healthy = serving and the buffer takes writes. Kafka being away, or a topic not created yet, is not
 * unhealthy: the buffer keeps everything meanwhile (the snapshot says which it is).
 */
export function judgeHealth(snapshot: StatusSnapshot): HealthVerdict {
  const reasons: string[] = [];
  if (snapshot.state !== 'running') reasons.push(`not serving (state ${snapshot.state})`);
  if (!snapshot.bufferWritable) reasons.push(`buffer not writable${snapshot.bufferError ? `: ${snapshot.bufferError}` : ''}`);
  return { healthy: reasons.length === 0, reasons };
}

/** The JSON /healthz answers with (200 when healthy, 503 otherwise). */
export interface HealthzBody
  extends HealthVerdict,
    Pick<StatusSnapshot, 'gatewayId' | 'state' | 'bufferWritable' | 'bufferError' | 'kafka' | 'kafkaTopicsMissing' | 'kafkaError' | 'uptime' | 'inRate' | 'outRate' | 'stats' | 'sampleFailures' | 'clock'> {
  status: 'ok' | 'unhealthy';
  system?: SystemSample & { ageSeconds: number };
}

export function healthzBody(snapshot: StatusSnapshot): HealthzBody {
  const verdict = judgeHealth(snapshot);
  const body: HealthzBody = {
    status: verdict.healthy ? 'ok' : 'unhealthy',
    ...verdict,
    gatewayId: snapshot.gatewayId,
    state: snapshot.state,
    bufferWritable: snapshot.bufferWritable,
    kafka: snapshot.kafka,
    uptime: snapshot.uptime,
    inRate: snapshot.inRate,
    outRate: snapshot.outRate,
    stats: snapshot.stats,
    sampleFailures: snapshot.sampleFailures,
  };
  if (snapshot.bufferError !== undefined) body.bufferError = snapshot.bufferError;
  if (snapshot.kafkaTopicsMissing !== undefined) body.kafkaTopicsMissing = snapshot.kafkaTopicsMissing;
  if (snapshot.kafkaError !== undefined) body.kafkaError = snapshot.kafkaError;
  if (snapshot.clock !== undefined) body.clock = snapshot.clock;
  if (snapshot.sample) body.system = { ...snapshot.sample, ageSeconds: Math.max(0, Date.now() - snapshot.sample.at) / 1000 };
  return body;
}
