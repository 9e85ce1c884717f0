/**
 * One Kafka broker for the whole test run: started here (or taken from KAFKA_BROKERS), handed to
 * test files through `inject('kafkaBrokers')`, stopped when the last phase that uses it is done.
 * Tests isolate themselves with unique topic and group names rather than with brokers of their own.
 */
import type { TestProject } from 'vitest/node';
import { silentLog, textLog } from '@city/protocol';
import { useKafka, type KafkaCluster } from '@city/deploy/kafka';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap addresses (`host:port`) of the broker shared by the test run. */
    kafkaBrokers: string[];
  }
}

// Each project (phase) runs this setup; they share one broker, stopped after the last one.
const shared = globalThis as { cityTestKafka?: { cluster: Promise<KafkaCluster>; users: number } };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const first = shared.cityTestKafka === undefined;
  shared.cityTestKafka ??= {
    users: 0,
    cluster: useKafka({ log: process.env['KAFKA_LAUNCHER_VERBOSE'] === '1' ? textLog('kafka') : silentLog }),
  };
  const entry = shared.cityTestKafka;
  entry.users++;
  const kafka = await entry.cluster;
  if (first) {
    process.stderr.write(
      kafka.external
        ? `[global-setup] using Kafka at ${kafka.brokers.join(',')} (KAFKA_BROKERS)\n`
        : `[global-setup] Kafka ${kafka.version ?? ''} on ${kafka.brokers.join(',')} in ${Date.now() - started} ms (log: ${kafka.logFile ?? '-'})\n`,
    );
  }
  project.provide('kafkaBrokers', kafka.brokers);
  return async () => {
    if (--entry.users > 0) return;
    shared.cityTestKafka = undefined;
    await kafka.stop();
  };
}
