// Benchmark helper (not a test): kafkajs alone consuming topics from the beginning with a group that only
// counts the records (the client's own cost). test/bench/sink.ts runs it in its own process and, as a
// script, in a process of its own, so kafkajs can decode as it ships (the sink's process decodes with
// cloud/src/sink/kafkajs-records.ts). The script prints one JSON line: CPU and wall ms from connect
// until `--total` records were handed out.
//   node test/bench/kafkajs-alone.ts --brokers H:P --topics a,b --total N --group G [--lean]
// --lean loads the sink's record decoder first, as the sink's process does.
import { parseArgs } from 'node:util';
import type { Kafka } from 'kafkajs';

export interface AloneRun {
  cpuMs: number;
  wallMs: number;
}

export async function consumeAlone(client: Kafka, topics: readonly string[], total: number, groupId: string): Promise<AloneRun> {
  const consumer = client.consumer({ groupId, maxWaitTimeInMs: 1_000 });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await consumer.connect();
  await consumer.subscribe({ topics: [...topics], fromBeginning: true });
  let seen = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      seen += batch.messages.length;
      if (seen >= total) done();
    },
  });
  await finished;
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await consumer.disconnect();
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { brokers: { type: 'string' }, topics: { type: 'string' }, total: { type: 'string' }, group: { type: 'string' }, lean: { type: 'boolean' } },
  });
  if (values.brokers === undefined || values.topics === undefined || values.total === undefined || values.group === undefined) {
    throw new Error('usage: kafkajs-alone.ts --brokers H:P --topics a,b --total N --group G [--lean]');
  }
  const lean = values.lean === true ? await import('@city/cloud/kafkajs-records') : undefined;
  const { Kafka: Client, logLevel } = await import('kafkajs');
  const client = new Client({ clientId: 'kafkajs-alone', brokers: values.brokers.split(','), logLevel: logLevel.NOTHING });
  const run = await consumeAlone(client, values.topics.split(','), Number(values.total), values.group);
  console.log(JSON.stringify({ ...run, lean: lean?.leanRecordDecoder() ?? false }));
  process.exit(0);
}
