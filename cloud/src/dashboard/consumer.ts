// The dashboard's Kafka consumer: a group of its own that commits nothing, so every start reads from the
// end of the event topics (positions are live) and from the start of the alert topic (the alerts raised
// before the dashboard started are still on screen).
import { setImmediate } from 'node:timers/promises';
// Before any consumer fetches: kafkajs then decodes records with the sink's decoder (see the module).
import '../sink/kafkajs-records.ts';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { withTimeout, type Log } from '@city/protocol';
import type { DashboardConfig } from './options.ts';

/** Records a batch hands over between turns of the event loop. */
const YIELD_EVERY = 2_000;

export interface RecordHandler {
  (topic: string, value: Buffer | null): void;
}

export interface DashboardConsumer {
  /** Subscribes to the topics that exist and starts reading; returns those missing. */
  start(): Promise<string[]>;
  /** Records behind the end of each topic-partition as of its last fetch, summed per topic. */
  lag(): Record<string, number>;
  /** Records between `group`'s committed offsets and the end, per event topic it has committed on. */
  groupLag(group: string): Promise<Record<string, number>>;
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
  const admin = kafka.admin();
  let adminUp: Promise<void> | undefined;
  // A lag poll still under way at close would reconnect the admin client and keep the process alive.
  let polling: Promise<unknown> = Promise.resolve();
  let closed = false;

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
          // A batch holds thousands of records: the page's stream and the HTTP port get a turn now and then.
          let sinceTurn = 0;
          for (const m of batch.messages) {
            onRecord(batch.topic, m.value);
            if (++sinceTurn === YIELD_EVERY) {
              sinceTurn = 0;
              await setImmediate();
            }
          }
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
    groupLag(group) {
      const run = (async () => {
        if (closed) return {};
        adminUp ??= admin.connect();
        await adminUp;
        return groupLagOnce(group);
      })();
      polling = run.catch(() => undefined);
      return run;
    },
    async disconnect() {
      closed = true;
      await consumer.disconnect();
      await polling;
      if (adminUp !== undefined) await adminUp.then(() => admin.disconnect()).catch(() => undefined);
    },
  };

  async function groupLagOnce(group: string): Promise<Record<string, number>> {
    const topics = Object.values(config.topics.events);
    const committed = await admin.fetchOffsets({ groupId: group, topics });
    const out: Record<string, number> = {};
    for (const { topic, partitions } of committed) {
      // A group that never committed on a topic has no lag to show there.
      if (partitions.every((p) => Number(p.offset) < 0)) continue;
      const ends = await admin.fetchTopicOffsets(topic);
      let lag = 0;
      for (const end of ends) {
        const at = Number(partitions.find((p) => p.partition === end.partition)?.offset ?? -1);
        lag += Number(end.high) - (at < 0 ? Number(end.low) : at);
      }
      out[topic] = lag;
    }
    return out;
  }
}
