// The dashboard's Kafka consumer: a group of its own that commits nothing, so every start reads from the
// end of the event topics (positions are live) and from the start of the alert topic (the alerts raised
// before the dashboard started are still on screen).
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { withTimeout, type Log } from '@city/protocol';
import type { DashboardConfig } from './options.ts';

export interface RecordHandler {
  (topic: string, value: Buffer | null): void;
}

export interface DashboardConsumer {
  /** Subscribes to the topics that exist and starts reading; returns those missing. */
  start(): Promise<string[]>;
  /** Records behind the end of each topic-partition as of its last fetch, summed per topic. */
  lag(): Record<string, number>;
  disconnect(): Promise<void>;
}

export function createDashboardConsumer(config: DashboardConfig, onRecord: RecordHandler, log: Log): DashboardConsumer {
  const kafka = new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => log(entry.level === logLevel.ERROR ? 'info' : 'debug', `kafkajs: ${entry.log.message}`, { namespace: entry.namespace }),
  });
  const consumer: Consumer = kafka.consumer({
    groupId: config.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: config.sessionTimeoutMs,
    heartbeatInterval: Math.min(3_000, Math.floor(config.sessionTimeoutMs / 3)),
    maxWaitTimeInMs: 250,
  });
  const lagByPartition = new Map<string, { topic: string; lag: number }>();

  return {
    async start() {
      const admin = kafka.admin();
      let existing: Set<string>;
      try {
        await withTimeout(admin.connect(), 10_000, 'connecting the Kafka admin client');
        existing = new Set(await withTimeout(admin.listTopics(), 10_000, 'listing topics'));
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
      const live = Object.values(config.topics.events).concat(config.topics.kpi).filter((t) => existing.has(t));
      const missing = [...Object.values(config.topics.events), config.topics.kpi, config.topics.alerts].filter((t) => !existing.has(t));
      await consumer.connect();
      if (live.length > 0) await consumer.subscribe({ topics: live, fromBeginning: false });
      if (existing.has(config.topics.alerts)) await consumer.subscribe({ topics: [config.topics.alerts], fromBeginning: true });
      if (live.length === 0 && !existing.has(config.topics.alerts)) return missing;
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 3,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) onRecord(batch.topic, m.value);
          lagByPartition.set(`${batch.topic}/${batch.partition}`, { topic: batch.topic, lag: Number(batch.offsetLag()) });
        },
      });
      return missing;
    },
    lag() {
      const out: Record<string, number> = {};
      for (const { topic, lag } of lagByPartition.values()) out[topic] = (out[topic] ?? 0) + lag;
      return out;
    },
    disconnect: () => consumer.disconnect(),
  };
}
