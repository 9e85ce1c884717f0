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
  /** Secured listeners beside the plaintext one (which stays for the launcher's own readiness check). */
  secure?: SecureListeners;
}

export interface SecureListeners {
  /** SASL_SSL: TLS, then SASL PLAIN, SCRAM-SHA-256/512 or OAUTHBEARER. */
  saslSslPort: number;
  /** SSL with a required client certificate (mutual TLS), no SASL. */
  mtlsPort: number;
  /** PEM: the broker's key and certificate. */
  keystoreFile: string;
  /** PEM: the CA client certificates must chain to. */
  truststoreFile: string;
  /** PLAIN users (in the listener's JAAS config); SCRAM users are added at format time instead. */
  users: readonly { name: string; password: string }[];
}

/** JAAS string literal: Kafka's parser reads backslash escapes inside double quotes. */
const jaasQuoted = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

function secureProperties(secure: SecureListeners): Record<string, string | number | boolean> {
  const plainUsers = secure.users.map((u) => `user_${u.name}=${jaasQuoted(u.password)}`).join(' ');
  return {
    'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
    'listener.name.sasl_ssl.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
    'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    // Unsigned tokens (alg none) with a "sub" claim: enough to exercise a client's token hook locally;
    // a real deployment validates signed tokens (AWS MSK IAM, Entra) instead.
    'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config': 'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";',
    'listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class':
      'org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler',
    'ssl.keystore.type': 'PEM',
    'ssl.keystore.location': secure.keystoreFile,
    'ssl.truststore.type': 'PEM',
    'ssl.truststore.location': secure.truststoreFile,
    'listener.name.ssl.ssl.client.auth': 'required',
    'ssl.client.auth': 'none',
  };
}

export function serverProperties(p: BrokerAddresses): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    // Static quorum: formatting then needs neither --standalone nor a directory id.
    'controller.quorum.voters': `1@${p.host}:${p.controllerPort}`,
    listeners: `PLAINTEXT://${p.host}:${p.port},CONTROLLER://${p.host}:${p.controllerPort}${p.secure === undefined ? '' : `,SASL_SSL://${p.host}:${p.secure.saslSslPort},SSL://${p.host}:${p.secure.mtlsPort}`}`,
    'advertised.listeners': `PLAINTEXT://${p.host}:${p.advertisedPort}${p.secure === undefined ? '' : `,SASL_SSL://${p.host}:${p.secure.saslSslPort},SSL://${p.host}:${p.secure.mtlsPort}`}`,
    'listener.security.protocol.map': `PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${p.secure === undefined ? '' : ',SASL_SSL:SASL_SSL,SSL:SSL'}`,
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
    ...(p.secure === undefined ? {} : secureProperties(p.secure)),
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
