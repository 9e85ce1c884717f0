// The Kafka forwarder: buffer → Kafka, backlog paced, failures told apart.
export { REPLAY_ORDERS, createForwarder, jittered, type Forwarder, type ForwarderEvents, type ForwarderOptions, type ReplayOrder } from './forwarder.ts';
export { KAFKA_STATES, isUnknownTopic, type KafkaState, type KafkaStateName } from './kafka-state.ts';
export { createCachingPartitioner } from './partitioner.ts';
