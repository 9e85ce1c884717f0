/**
 * One Kafka broker for the whole test run: started here (or taken from KAFKA_BROKERS), handed to
 * test files through `inject('kafkaBrokers')`, stopped at teardown. Tests isolate themselves with
 * unique topic and group names rather than with brokers of their own.
 */
import type { TestProject } from 'vitest/node';
import { useKafka } from '@city/deploy/kafka';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap addresses (`host:port`) of the broker shared by the test run. */
    kafkaBrokers: string[];
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const kafka = await useKafka({
    log: (line) => {
      if (process.env['KAFKA_LAUNCHER_VERBOSE'] === '1') process.stderr.write(`[kafka] ${line}\n`);
    },
  });
  process.stderr.write(
    kafka.external
      ? `[global-setup] using Kafka at ${kafka.brokers.join(',')} (KAFKA_BROKERS)\n`
      : `[global-setup] Kafka ${kafka.version ?? ''} on ${kafka.brokers.join(',')} in ${Date.now() - started} ms (log: ${kafka.logFile ?? '-'})\n`,
  );
  project.provide('kafkaBrokers', kafka.brokers);
  return async () => {
    await kafka.stop();
  };
}
