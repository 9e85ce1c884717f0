// Public entry of the Kafka launcher: fetch a broker, start one (or use KAFKA_BROKERS), create topics.
export { KAFKA_VERSION, fetchKafka, kafkaCacheRoot, type FetchKafkaOptions } from './fetch.ts';
export { parseBrokers, startKafka, useKafka, type KafkaCluster, type SecureCluster, type SecureUser, type StartKafkaOptions } from './broker.ts';
export { generateTestCertificates, type TestCertificates } from './certs.ts';
export { ensureStandardTopics, ensureTopics, standardTopics, type EnsureTopicsResult, type TopicSpec } from './topics.ts';
export { kafkaErrors, type KafkaErrorCode } from './errors.ts';
