// Topics: created on purpose with explicit partition counts (the broker never auto-creates them), and
// the standard set of the platform (one topic per event kind plus the dead letters, from protocol).
import kafkajs from 'kafkajs';
import { sleep, standardTopicSpecs } from '@city/protocol';
import { errorMessage } from './child.ts';
import { kafkaErrors } from './errors.ts';

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  replicationFactor?: number;
  configs?: Record<string, string>;
}

export interface EnsureTopicsResult {
  /** Topics this call created. */
  created: string[];
  /** Topics that were there already (with at least the partitions asked for). */
  existing: string[];
}

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

function checkSpecs(topics: TopicSpec[]): void {
  const names = new Set<string>();
  for (const spec of topics) {
    if (!TOPIC_NAME.test(spec.topic) || spec.topic === '.' || spec.topic === '..') {
      throw kafkaErrors.create('KAFKA_INVALID_OPTION', `topic "${spec.topic}": name must be 1..249 of [a-zA-Z0-9._-] and not "." or ".."`);
    }
    if (names.has(spec.topic)) throw kafkaErrors.create('KAFKA_INVALID_OPTION', `topic "${spec.topic}" is listed twice`);
    names.add(spec.topic);
    if (!Number.isInteger(spec.numPartitions) || spec.numPartitions < 1) {
      throw kafkaErrors.create('KAFKA_INVALID_OPTION', `topic "${spec.topic}": numPartitions must be an integer ≥ 1, got ${String(spec.numPartitions)}`);
    }
    if (spec.replicationFactor !== undefined && (!Number.isInteger(spec.replicationFactor) || spec.replicationFactor < 1)) {
      throw kafkaErrors.create('KAFKA_INVALID_OPTION', `topic "${spec.topic}": replicationFactor must be an integer ≥ 1, got ${String(spec.replicationFactor)}`);
    }
  }
}

/**
 * Creates the topics that do not exist yet, with explicit partition counts, and waits until the
 * metadata shows every topic with a leader for each partition. Existing topics are left alone,
 * except that one with fewer partitions than asked for is an error: keyed ordering depends on
 * the count, so this is not silently "fixed".
 */
export async function ensureTopics(brokers: string[], topics: TopicSpec[], options: { timeoutMs?: number } = {}): Promise<EnsureTopicsResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  checkSpecs(topics);
  if (topics.length === 0) return { created: [], existing: [] };

  const admin = new kafkajs.Kafka({ clientId: 'smart-city-ensure-topics', brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const present = new Set(await admin.listTopics());
    const missing = topics.filter((spec) => !present.has(spec.topic));
    if (missing.length > 0) {
      // A concurrent creator makes kafkajs report TOPIC_ALREADY_EXISTS, which it maps to `false`.
      await admin.createTopics({
        waitForLeaders: false,
        timeout: timeoutMs,
        topics: missing.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.numPartitions,
          replicationFactor: spec.replicationFactor ?? 1,
          configEntries: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    }

    const deadline = Date.now() + timeoutMs;
    const wanted = new Map(topics.map((spec) => [spec.topic, spec.numPartitions]));
    let pending = 'no metadata yet';
    while (Date.now() < deadline) {
      try {
        const { topics: metadata } = await admin.fetchTopicMetadata({ topics: [...wanted.keys()] });
        const notReady: string[] = [];
        for (const topic of metadata) {
          const want = wanted.get(topic.name) ?? 0;
          const count = topic.partitions.length;
          if (count > 0 && count < want) {
            throw kafkaErrors.create('KAFKA_TOPIC_MISMATCH', `topic "${topic.name}" exists with ${count} partitions but ${want} were asked for`);
          }
          if (count === 0 || topic.partitions.some((p) => p.leader < 0)) notReady.push(topic.name);
        }
        if (metadata.length === wanted.size && notReady.length === 0) {
          return { created: missing.map((spec) => spec.topic), existing: topics.filter((spec) => present.has(spec.topic)).map((spec) => spec.topic) };
        }
        pending = `waiting for leaders of ${notReady.join(', ') || 'all topics'}`;
      } catch (err) {
        if (kafkaErrors.is(err, 'KAFKA_TOPIC_MISMATCH')) throw err;
        pending = errorMessage(err);
      }
      await sleep(100);
    }
    throw kafkaErrors.create('KAFKA_TOPICS_TIMEOUT', `topics ${[...wanted.keys()].join(', ')} not ready after ${timeoutMs} ms: ${pending}`);
  } finally {
    await admin.disconnect();
  }
}

/** The platform's standard topics (`suffix` appends `.<suffix>` to each name), created as ensureTopics does. */
export function standardTopics(suffix?: string): TopicSpec[] {
  return standardTopicSpecs(suffix);
}

/** Creates the standard topics that are missing; see ensureTopics. */
export function ensureStandardTopics(brokers: string[], options: { suffix?: string; timeoutMs?: number } = {}): Promise<EnsureTopicsResult> {
  return ensureTopics(brokers, standardTopics(options.suffix), options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
}
