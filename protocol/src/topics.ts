// Names on the wire: MQTT topics devices publish to, and Kafka topics (record headers: headers.ts).
import { Type, type Static } from '@sinclair/typebox';
import { EVENT_KINDS, isEventKind, SCHEMA_VERSION, StringEnum, type EventKind } from './schemas.ts';

/** A device publishes only under `city/v1/devices/<deviceId>/`, one sub-topic per event kind. */
export const MQTT_ROOT = 'city/v1/devices';

export function mqttTopic(deviceId: string, kind: EventKind): string {
  return `${MQTT_ROOT}/${deviceId}/${kind}`;
}

/** Prefix under which `deviceId` may publish (for ACLs). */
export function mqttDevicePrefix(deviceId: string): string {
  return `${MQTT_ROOT}/${deviceId}/`;
}

export type MqttTopicParse =
  | { ok: true; deviceId: string; kind: EventKind }
  | { ok: false; deviceId: string | undefined; reason: string };

export function parseMqttTopic(topic: string): MqttTopicParse {
  const rest = topic.startsWith(`${MQTT_ROOT}/`) ? topic.slice(MQTT_ROOT.length + 1) : undefined;
  if (rest === undefined) return { ok: false, deviceId: undefined, reason: `topic must start with ${MQTT_ROOT}/` };
  const parts = rest.split('/');
  const deviceId = parts[0] || undefined;
  if (parts.length !== 2 || deviceId === undefined) {
    return { ok: false, deviceId, reason: `topic must be ${MQTT_ROOT}/<deviceId>/<kind>` };
  }
  if (!isEventKind(parts[1])) {
    return { ok: false, deviceId, reason: `unknown event kind "${parts[1]}" in topic; expected one of ${EVENT_KINDS.join(', ')}` };
  }
  return { ok: true, deviceId, kind: parts[1] };
}

/** One Kafka topic per event kind; record key = device id, so each device's events stay in order. */
export const KAFKA_TOPICS: { readonly [K in EventKind]: string } = Object.fromEntries(
  EVENT_KINDS.map((kind) => [kind, `city.${kind}.v${SCHEMA_VERSION}`]),
) as { [K in EventKind]: string };

export const DEADLETTER_TOPIC = `city.deadletter.v${SCHEMA_VERSION}`;

const KIND_BY_TOPIC = new Map<string, EventKind>(EVENT_KINDS.map((kind) => [KAFKA_TOPICS[kind], kind]));

export function kindOfKafkaTopic(topic: string): EventKind | undefined {
  return KIND_BY_TOPIC.get(topic);
}

/** The Kafka topics one deployment uses. */
export interface KafkaTopicSet {
  events: { [K in EventKind]: string };
  deadletter: string;
}

/** The standard topics, or the same names with `.<suffix>` appended (a test run, a staging namespace). */
export function kafkaTopicSet(suffix?: string): KafkaTopicSet {
  const name = (topic: string) => (suffix === undefined ? topic : `${topic}.${suffix}`);
  return {
    events: Object.fromEntries(EVENT_KINDS.map((kind) => [kind, name(KAFKA_TOPICS[kind])])) as KafkaTopicSet['events'],
    deadletter: name(DEADLETTER_TOPIC),
  };
}

/** Partition counts the topics are created with: busy kinds get room to scale sink instances. */
export const TOPIC_PARTITIONS: { readonly [K in EventKind | 'deadletter']: number } = {
  vehicle: 6,
  gps: 6,
  weather: 3,
  air_quality: 3,
  traffic_camera: 3,
  emergency: 3,
  phone: 6,
  gateway_health: 1,
  deadletter: 3,
};

/** Topic names with explicit partition counts, for creating the topics of a set. */
export function topicSpecs(set: KafkaTopicSet = kafkaTopicSet()): { topic: string; numPartitions: number }[] {
  return [
    ...EVENT_KINDS.map((kind) => ({ topic: set.events[kind], numPartitions: TOPIC_PARTITIONS[kind] })),
    { topic: set.deadletter, numPartitions: TOPIC_PARTITIONS.deadletter },
  ];
}

/**
 * Topics of the live KPIs and alerts (cloud live): `kpi` holds KPI window updates (key
 * `<kpi>|<key>|<windowStartIso>`), `alerts` alert raise/clear events (key = alert id), `partials` the
 * live instances' per-partition contributions they merge among themselves (key `<kpi>|<key>`).
 */
export interface LiveTopicSet {
  kpi: string;
  alerts: string;
  partials: string;
}

export const KPI_TOPIC = `city.kpi.v${SCHEMA_VERSION}`;
export const ALERTS_TOPIC = `city.alerts.v${SCHEMA_VERSION}`;
export const KPI_PARTIALS_TOPIC = `city.kpi.partials.v${SCHEMA_VERSION}`;

export function liveTopicSet(suffix?: string): LiveTopicSet {
  const name = (topic: string) => (suffix === undefined ? topic : `${topic}.${suffix}`);
  return { kpi: name(KPI_TOPIC), alerts: name(ALERTS_TOPIC), partials: name(KPI_PARTIALS_TOPIC) };
}

export const LIVE_TOPIC_PARTITIONS: { readonly [K in keyof LiveTopicSet]: number } = { kpi: 6, alerts: 3, partials: 6 };

export function liveTopicSpecs(set: LiveTopicSet = liveTopicSet()): { topic: string; numPartitions: number }[] {
  return (['kpi', 'alerts', 'partials'] as const).map((k) => ({ topic: set[k], numPartitions: LIVE_TOPIC_PARTITIONS[k] }));
}

/** Every topic the platform uses (events, dead letters, live), as `kafka topics` and `kafka start` create them. */
export function standardTopicSpecs(suffix?: string): { topic: string; numPartitions: number }[] {
  return [...topicSpecs(kafkaTopicSet(suffix)), ...liveTopicSpecs(liveTopicSet(suffix))];
}

/** A message the gateway refused, as written to the dead-letter topic. */
export const DeadLetter = Type.Object(
  {
    stage: StringEnum(['gateway', 'sink', 'live'] as const, 'where it was refused (live: an event too late for its KPI window)'),
    reason: Type.String({ description: 'one-line summary of what was wrong' }),
    problems: Type.Array(
      Type.Object({ path: Type.String(), rule: Type.String(), message: Type.String() }, { additionalProperties: false }),
    ),
    payload: Type.String({ description: 'the payload as received' }),
    payloadEncoding: StringEnum(['utf8', 'base64'] as const),
    mqttTopic: Type.String(),
    clientId: Type.String(),
    deviceId: Type.Optional(Type.String()),
    kind: Type.Optional(Type.String()),
    eventId: Type.Optional(Type.String()),
    gatewayId: Type.String(),
    receivedAt: Type.Integer({ unit: 'ms', description: 'gateway receive time, epoch milliseconds' }),
  },
  { additionalProperties: false },
);
export type DeadLetter = Static<typeof DeadLetter>;

/** Payload bytes as a string that survives JSON: UTF-8 where it is valid UTF-8, base64 otherwise. */
export function encodePayload(payload: Uint8Array): Pick<DeadLetter, 'payload' | 'payloadEncoding'> {
  try {
    return { payload: new TextDecoder('utf-8', { fatal: true }).decode(payload), payloadEncoding: 'utf8' };
  } catch {
    return { payload: Buffer.from(payload).toString('base64'), payloadEncoding: 'base64' };
  }
}
