// Broker configuration: the server.properties of a one-node KRaft broker (broker and controller in one
// JVM) and the log4j2 configuration that sends its logs to broker.log.
import { randomBytes } from 'node:crypto';

export interface BrokerAddresses {
  host: string;
  /** Client listener. */
  port: number;
  /** Port clients are told in metadata (a fault proxy's, in the soak test). */
  advertisedPort: number;
  controllerPort: number;
  logDirs: string;
}

export function serverProperties(p: BrokerAddresses): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    // Static quorum: formatting then needs neither --standalone nor a directory id.
    'controller.quorum.voters': `1@${p.host}:${p.controllerPort}`,
    listeners: `PLAINTEXT://${p.host}:${p.port},CONTROLLER://${p.host}:${p.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${p.host}:${p.advertisedPort}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'log.dirs': p.logDirs,
    // Topics are created on purpose, with explicit partition counts (ensureTopics).
    'auto.create.topics.enable': false,
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    // One node: internal topics with one replica, few partitions so the first group or producer id is quick.
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Small machine: the cleaner's default 128 MiB dedupe buffer would be a quarter of the heap.
    'log.cleaner.dedupe.buffer.size': 8 * 1024 * 1024,
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    // Fast, clean shutdown: the broker is its own controller, nothing to wait for.
    'controlled.shutdown.enable': true,
    'controller.quorum.election.timeout.ms': 1_000,
    'controller.quorum.fetch.timeout.ms': 2_000,
  };
  return `${Object.entries(props)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join('\n')}\n`;
}

export const LOG4J2_PROPERTIES = `# Written by the Kafka launcher (deploy/kafka/config.ts): everything to stdout, which the launcher sends to broker.log.
status = warn
# Kafka logs from its own shutdown hook; log4j's hook would stop logging under it.
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
# Per-request and state-change chatter that buries the useful lines.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
# Every client and server config object dumps all its settings at INFO; server.properties is beside this file.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
`;

/** Kafka's cluster id: 16 random bytes, base64url; Kafka avoids a leading '-' (CLI flag confusion). */
export function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
