// The intake: one accepted publish becomes one outbox record (a valid event on its kind's topic) or a
// dead letter naming every problem, handed to the group commit. The device's PUBACK waits for the
// commit (aedes sends it when authorizePublish calls back), so acknowledged means durable.
import type { Client, PublishPacket } from 'aedes';
import {
  decodeEvent,
  describeProblems,
  encodePayload,
  parseMqttTopic,
  type CityEvent,
  type DeadLetter,
  type KafkaTopicSet,
  type MqttTopicParse,
  type Problem,
} from '@city/protocol';
import type { Done, OutboxRecord } from '../buffer/index.ts';
import { gatewayErrors } from '../errors.ts';
import type { Security } from './security.ts';

export interface IntakeOptions {
  gatewayId: string;
  topics: KafkaTopicSet;
  security: Security;
  /** Where records go: the group commit. */
  enqueue: (record: OutboxRecord, done: Done) => void;
  /** False unless the gateway is running: intake stops first when it closes. */
  accepting: () => boolean;
  onDeadLetter: (letter: DeadLetter) => void;
  /** Whether the clock is synchronised now (cached, see health/clock.ts); undefined = unknown. */
  clockSynced?: () => boolean | undefined;
}

export interface IntakeCounters {
  /** Publishes received from devices. */
  received: number;
  /** Valid events committed to the buffer. */
  accepted: number;
  /** Invalid publishes committed to the buffer as dead letters. */
  deadLettered: number;
}

export interface Intake {
  /** aedes's authorizePublish hook. */
  authorizePublish(client: Client | null, packet: PublishPacket, callback: (err?: Error | null) => void): void;
  /** One of the gateway's own events (its health) through the same path as a device's. */
  submit(event: CityEvent, done: Done): void;
  counters(): IntakeCounters;
}

/** Devices publish to the same few topics over and over: each is parsed once (bounded, dropped when full). */
const TOPIC_CACHE = 20_000;

export function createIntake(options: IntakeOptions): Intake {
  const { security, topics, enqueue } = options;
  const counts: IntakeCounters = { received: 0, accepted: 0, deadLettered: 0 };
  const parsedTopics = new Map<string, MqttTopicParse>();
  const parseTopic = (topic: string): MqttTopicParse => {
    let parsed = parsedTopics.get(topic);
    if (parsed === undefined) {
      if (parsedTopics.size >= TOPIC_CACHE) parsedTopics.clear();
      parsedTopics.set(topic, (parsed = parseMqttTopic(topic)));
    }
    return parsed;
  };

  const stamp = (record: OutboxRecord): OutboxRecord => {
    const synced = options.clockSynced?.();
    if (synced !== undefined) record.clockSynced = synced;
    return record;
  };

  const deadLetter = (
    packet: PublishPacket,
    payload: Buffer,
    clientId: string,
    receivedAt: number,
    problems: Problem[],
    deviceId: string | undefined,
    kind: string | undefined,
  ): OutboxRecord => {
    const letter: DeadLetter = {
      stage: 'gateway',
      reason: describeProblems(problems),
      problems,
      ...encodePayload(payload),
      mqttTopic: packet.topic,
      clientId,
      gatewayId: options.gatewayId,
      receivedAt,
    };
    if (deviceId !== undefined) letter.deviceId = deviceId;
    if (kind !== undefined) letter.kind = kind;
    const eventId = peekEventId(payload);
    if (eventId !== undefined) letter.eventId = eventId;
    counts.deadLettered++;
    options.onDeadLetter(letter);
    return stamp({ topic: topics.deadletter, key: deviceId ?? clientId, value: Buffer.from(JSON.stringify(letter)), receivedAt, eventId: null, lane: 'deadletter' });
  };

  const eventRecord = (event: CityEvent, payload: Buffer, receivedAt: number): OutboxRecord => {
    counts.accepted++;
    return stamp({
      topic: topics.events[event.kind],
      key: event.deviceId,
      value: payload,
      receivedAt,
      eventId: event.eventId,
      lane: event.kind === 'emergency' ? 'emergency' : 'telemetry',
    });
  };

  return {
    authorizePublish(client, packet, callback) {
      if (!options.accepting()) {
        callback(gatewayErrors.create('GW_CLOSED', 'not accepting publishes'));
        return;
      }
      counts.received++;
      const receivedAt = Date.now();
      const clientId = client?.id ?? '';
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      // Rate, size and topic ownership are checked before anything parses the payload (security.ts).
      const verdict = security.checkPublish(client, packet, payload.length);
      if (verdict.action === 'refuse') {
        callback(verdict.error);
        return;
      }
      if (verdict.action === 'deadletter') {
        const named = parseTopic(packet.topic);
        const kept = payload.subarray(0, verdict.keepBytes);
        enqueue(deadLetter(packet, kept, clientId, receivedAt, [verdict.problem], named.deviceId, named.ok ? named.kind : undefined), (err) => {
          callback(err);
          if (!err && verdict.disconnect && client !== null) setImmediate(() => client.close());
        });
        return;
      }
      const topic = parseTopic(packet.topic);
      let record: OutboxRecord;
      if (!topic.ok) {
        record = deadLetter(packet, payload, clientId, receivedAt, [{ path: '', rule: 'topic', message: topic.reason }], topic.deviceId, undefined);
      } else {
        const result = decodeEvent(payload, { kind: topic.kind, deviceId: topic.deviceId });
        record = result.ok
          ? eventRecord(result.value, payload, receivedAt)
          : deadLetter(packet, payload, clientId, receivedAt, result.problems, topic.deviceId, topic.kind);
      }
      // An invalid publish is acknowledged once its dead letter is durable: resending it cannot help.
      enqueue(record, callback);
    },
    submit(event, done) {
      enqueue(eventRecord(event, Buffer.from(JSON.stringify(event)), Date.now()), done);
    },
    counters: () => ({ ...counts }),
  };
}

function peekEventId(payload: Buffer): string | undefined {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    const id = typeof value === 'object' && value !== null ? (value as { eventId?: unknown }).eventId : undefined;
    return typeof id === 'string' && id.length <= 128 ? id : undefined;
  } catch {
    return undefined;
  }
}
