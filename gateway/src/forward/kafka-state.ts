// What the gateway knows of Kafka, from its last send: a broker that does not answer is not the same
// trouble as a broker that answers "this topic does not exist" (created by nobody yet). Both are
// buffered through, but only the second needs someone to act.

export const KAFKA_STATES = ['unknown', 'reachable', 'unreachable', 'topic-missing'] as const;
export type KafkaStateName = (typeof KAFKA_STATES)[number];

export interface KafkaState {
  state: KafkaStateName;
  /** With topic-missing: the topics the last batch was for that the brokers do not have. */
  topicsMissing?: string[];
  /** Why the last send failed (unreachable, topic-missing). */
  error?: string;
}

interface KafkaJsErrorLike {
  name?: unknown;
  type?: unknown;
  cause?: unknown;
  errors?: unknown;
}

// kafkajs 2.2.4 against a broker without the topic (allowAutoTopicCreation false), checked against the
// real broker: KafkaJSNumberOfRetriesExceeded("This server does not host this topic-partition") whose
// cause is a KafkaJSProtocolError of type UNKNOWN_TOPIC_OR_PARTITION. An unreachable broker gives
// KafkaJSConnectionError causes instead.
const UNKNOWN_TOPIC = 'UNKNOWN_TOPIC_OR_PARTITION';

/** True when kafkajs reports (anywhere in its chain of causes) that a topic does not exist. */
export function isUnknownTopic(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 8) return false;
  const e = err as KafkaJsErrorLike;
  if (e.type === UNKNOWN_TOPIC) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isUnknownTopic(inner, depth + 1))) return true;
  return isUnknownTopic(e.cause, depth + 1);
}
