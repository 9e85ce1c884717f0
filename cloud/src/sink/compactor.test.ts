// The sink compacts its own committed files while it writes and while readers query: the number of files
// per lake partition stays bounded, readers never see a row twice or lose one, and files of
// topic-partitions the sink does not own are left alone.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DuckDBInstance } from '@duckdb/node-api';
import { recordHeaders, waitFor } from '@city/protocol';
import { expectedCounts, lakeCounts, rowsOf, sampleEvent, writeLake } from '../../../test/support/lake.ts';
import { connectTestKafka, RECEIVED_AT, scenario, startTestSink, type TestKafka } from '../../../test/support/sink.ts';
import { tempDir } from '../../../test/support/teardown.ts';
import { liveFiles, parseLakeFileKey, supersededFiles, tablePrefix } from '../lake/index.ts';
import { queryLake } from '../ports/query/index.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';

const brokers = inject('kafkaBrokers');

let kafka: TestKafka;
beforeAll(async () => {
  kafka = await connectTestKafka(brokers, 'compactor-test');
});
afterAll(async () => {
  await kafka?.close();
});

const HOURS = [Date.UTC(2024, 4, 1, 0, 10), Date.UTC(2024, 4, 1, 1, 10)];

describe('the sink compacting its own files', () => {
  it('bounds the files per lake partition while writing, with queries running, and leaves foreign files alone', async () => {
    const s = await scenario(brokers, tempDir('cloud-compactor-'), 'compact');
    // Files of a topic-partition this sink does not read (another sink's), in the same lake partitions.
    const foreign = await writeLake(
      s.lakeDir,
      HOURS.flatMap((at, h) =>
        [0, 1, 2].map((f) => ({
          table: 'vehicle' as const,
          partition: { event_date: '2024-05-01', event_hour: h },
          topic: 'city.vehicle.v1.elsewhere',
          kafkaPartition: 0,
          firstOffset: BigInt(f * 10),
          lastOffset: BigInt(f * 10 + 1),
          rows: rowsOf('vehicle', [0, 1].map((i) => sampleEvent('vehicle', 100_000 + h * 100 + f * 10 + i, { idPrefix: `${s.id}-foreign`, dateObserved: at }))),
        })),
      ),
    );

    const sink = startTestSink(brokers, s, { maxRows: 10, maxAgeMs: 150, compactEveryMs: 300 });
    let rounds = 0;
    sink.on('compaction', () => rounds++);
    const compactionErrors: string[] = [];
    sink.on('compactionError', ({ error }) => compactionErrors.push(error.message));
    await sink.start();

    // A reader queries all along (one statement, so rows and ids come from the same views): never a
    // duplicate, never fewer rows than it saw before.
    const seen: { rows: number; ids: number }[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const { rows } = await queryLake(s.lakeDir, 'SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM vehicle');
        seen.push({ rows: Number(rows[0]?.n), ids: Number(rows[0]?.ids) });
      }
    })();

    const waves = 12;
    const perWave = 60;
    for (let w = 0; w < waves; w++) {
      const events = Array.from({ length: perWave }, (_, i) => sampleEvent('vehicle', w * perWave + i, { idPrefix: s.id, dateObserved: HOURS[i % 2] as number }));
      await kafka.produce(
        s.topics.events.vehicle,
        events.map((e) => ({ key: e.deviceId, value: JSON.stringify(e), headers: recordHeaders({ gatewayId: 'gw-test', receivedAt: RECEIVED_AT, eventId: e.eventId }) })),
      );
      // The next wave once this one is committed: files of earlier waves are then final.
      await waitFor(async () => (await kafka.lagging(s.groupId, s.topics)) === 0, { timeoutMs: 30_000, intervalMs: 50, what: `wave ${w} committed` });
    }
    const compactedWhileWriting = sink.stats().compactedInputs;
    // Two more rounds after the last commit: the first may still see the last flush's files as new.
    const after = rounds;
    await waitFor(() => rounds >= after + 2, { timeoutMs: 30_000, what: 'two compaction rounds after the last commit' });
    reading = false;
    await reader;

    const total = waves * perWave;
    expect(compactionErrors).toEqual([]);
    expect(compactedWhileWriting).toBeGreaterThan(0);
    expect(await lakeCounts(s.lakeDir)).toMatchObject(expectedCounts({ vehicle: total + foreign.length * 2 }, 0));
    expect(seen.length).toBeGreaterThan(3);
    for (const [i, v] of seen.entries()) {
      expect(v.rows, `view ${i}`).toBe(v.ids);
      if (i > 0) expect(v.rows, `view ${i} after ${seen[i - 1]?.rows}`).toBeGreaterThanOrEqual(seen[i - 1]?.rows ?? 0);
    }

    // All committed and compacted: per lake partition one file per Kafka topic-partition, nothing superseded left.
    const store = createLocalFolderStore(s.lakeDir);
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    try {
      for (const table of ['vehicle', 'raw_vehicle'] as const) {
        const keys = (await store.list(tablePrefix(table))).filter((k) => k.endsWith('.parquet'));
        expect(supersededFiles(keys).size, table).toBe(0);
        const perGroup = new Map<string, number>();
        for (const key of liveFiles(keys)) {
          const file = parseLakeFileKey(key);
          if (file === undefined || file.topic !== s.topics.events.vehicle) continue;
          const group = `${file.folder} ${file.kafkaPartition}`;
          perGroup.set(group, (perGroup.get(group) ?? 0) + 1);
        }
        expect(perGroup.size, table).toBeGreaterThan(HOURS.length);
        expect(Math.max(...perGroup.values()), table).toBe(1);
        // Merged files keep their table's codec.
        const files = liveFiles(keys).map((k) => `'${join(s.lakeDir, k)}'`);
        const codecs = (await db.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata([${files.join(', ')}])`)).getRows().map((r) => r[0]);
        expect(codecs, table).toEqual([table === 'raw_vehicle' ? 'ZSTD' : 'SNAPPY']);
      }
      // Another sink's files: not one touched.
      const foreignLeft = (await store.list(tablePrefix('vehicle'))).filter((k) => k.includes('elsewhere'));
      expect(foreignLeft).toEqual([...foreign].sort());
    } finally {
      db.closeSync();
      await store.close();
    }
  }, 120_000);
});
