// The Kafka forwarder: buffer → Kafka, backlog paced, failures told apart.
export { REPLAY_ORDERS, UPLINK_COMPRESSIONS, createForwarder, jittered, type Forwarder, type ForwarderEvents, type ForwarderOptions, type ReplayOrder, type UplinkCompression } from './forwarder.ts';
export { KAFKA_STATES, describeKafkaFailure, isUnknownTopic, type KafkaFailureKind, type KafkaState, type KafkaStateName } from './kafka-state.ts';
export { createMessageEncoder, type UplinkMessage } from './messages.ts';
export { createCachingPartitioner, createKeyCache, type KeyBytes, type KeyPartitioner } from './partitioner.ts';
export { clientSecurity, type UplinkSecurity } from './security.ts';
