// Kafka for tests in every workspace: the launcher's topic creation, reached through the deploy package.
export { ensureStandardTopics, ensureTopics } from '@city/deploy/kafka';
