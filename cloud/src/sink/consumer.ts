// The sink's Kafka consumer: one kafkajs consumer group member reading the sink's topics batch by batch,
// with offsets committed only by the sink (no auto-commit, no auto-resolve of whole batches).
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type LogEntry } from 'kafkajs';
import { withTimeout, type Log } from '@city/protocol';
import type { CommittedOffset } from './events.ts';

export interface ConsumerSettings {
  brokers: string[];
  clientId: string;
  groupId: string;
  fromBeginning: boolean;
  sessionTimeoutMs: number;
  topics: readonly string[];
}

export interface ConsumerHandlers {
  batch(payload: EachBatchPayload): Promise<void>;
  /** The group was (re)joined with this assignment: topic → partitions. */
  joined(assignment: Record<string, number[]>): void;
  /** kafkajs's consumer crashed; with restart it will rejoin by itself. */
  crashed(error: Error, restart: boolean): void;
}

export interface SinkConsumer {
  /** Connects, subscribes and starts the consumer loop; resolves once the group is joined. */
  start(): Promise<void>;
  /** Reads a topic-partition again from `offset` (next fetch); false when the consumer cannot seek now. */
  seek(topic: string, partition: number, offset: bigint): boolean;
  /** Stops fetching every topic but stays in the group (commits still need the membership). */
  pauseAll(): void;
  /** Commits offsets; rejects while kafkajs is restarting after a crash (its commit would be dropped). */
  commit(offsets: readonly CommittedOffset[]): Promise<void>;
  disconnect(): Promise<void>;
  /** Which of the sink's topics the cluster lacks. */
  missingTopics(): Promise<string[]>;
}

export function createSinkConsumer(settings: ConsumerSettings, handlers: ConsumerHandlers, log: Log): SinkConsumer {
  const kafka = new Kafka({ clientId: settings.clientId, brokers: settings.brokers, logLevel: logLevel.INFO, logCreator: () => (entry) => kafkaLog(log, entry) });
  // Topics are created by deployment with their partition counts; the sink must not invent them.
  const consumer: Consumer = kafka.consumer({
    groupId: settings.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: Math.min(3_000, Math.floor(settings.sessionTimeoutMs / 3)),
    // kafkajs's stop() waits for the fetch in flight: a short long-poll keeps close() quick.
    maxWaitTimeInMs: 1_000,
  });
  // Between a crash and the next join kafkajs's runner is stopped, and its commitOffsets then returns
  // without committing anything: such a commit must fail (and be retried), not look done.
  let up = false;
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    up = true;
    handlers.joined(event.payload.memberAssignment);
  });
  consumer.on(consumer.events.CRASH, (event) => {
    up = false;
    handlers.crashed(event.payload.error, event.payload.restart);
  });

  return {
    async start() {
      await consumer.connect();
      await consumer.subscribe({ topics: [...settings.topics], fromBeginning: settings.fromBeginning });
      await consumer.run({
        autoCommit: false,
        // Offsets are resolved one by one as records are buffered, never for a whole batch at once.
        eachBatchAutoResolve: false,
        eachBatch: (payload) => handlers.batch(payload),
      });
    },
    seek(topic, partition, offset) {
      try {
        consumer.seek({ topic, partition, offset: offset.toString() });
        return true;
      } catch (err) {
        log('warn', 'seek failed', { topic, partition, error: err });
        return false;
      }
    },
    pauseAll() {
      try {
        consumer.pause(settings.topics.map((topic) => ({ topic })));
      } catch {
        // not running (start failed or already stopped): nothing to pause
      }
    },
    async commit(offsets) {
      if (!up) throw new Error('the Kafka consumer is restarting after a crash; committing later');
      await consumer.commitOffsets([...offsets]);
    },
    disconnect: () => consumer.disconnect(),
    async missingTopics() {
      const admin = kafka.admin();
      try {
        await withTimeout(admin.connect(), 10_000, 'connecting the Kafka admin client');
        const existing = new Set(await withTimeout(admin.listTopics(), 10_000, 'listing topics'));
        return settings.topics.filter((t) => !existing.has(t));
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
  };
}

function kafkaLog(log: Log, entry: LogEntry): void {
  const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry.log;
  // Kafka no longer holds the records at the position the group reads from (retention deleted them before
  // they were read): kafkajs resumes at the oldest record kept, so what lay between never reaches the lake.
  if (message.startsWith('Offset out of range')) {
    log('warn', 'kafkajs: Kafka no longer holds the records at the sink position; reading resumes at the oldest record kept', { namespace: entry.namespace, ...fields });
    return;
  }
  // kafkajs logs every retried connection error as ERROR; the sink reports what outlasts retries itself.
  const level = entry.level === logLevel.ERROR ? 'info' : 'debug';
  log(level, `kafkajs: ${message}`, { namespace: entry.namespace, ...fields });
}
