// Compaction over a real local lake (and one on the S3 protocol): readers going through liveFiles() see
// every row exactly once before and after, and a run killed after its merge is rolled forward. The CLI
// killed with SIGKILL at every step is in compaction.heavy.test.ts.
import { cp, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBInstance, quotedString, type DuckDBConnection } from '@duckdb/node-api';
import { partitionOf } from '@city/protocol';
import { runCli } from '../../../test/support/cli.ts';
import { lakeFolder, writeSinkLikeLake } from '../../../test/support/lake.ts';
import { startS3 } from '../../../test/support/s3.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { queryLake } from '../ports/query/index.ts';
import { createLocalFolderStore, createS3Store } from '../ports/store/index.ts';
import { compactLake, compactPartition } from './compaction.ts';
import { dataFileKey, mergedFileName, parseLakeFileKey as parseRangeFile, partitionPrefix, tablePrefix, type LakePartition } from './layout.ts';
import { liveFiles } from './reader.ts';

const CLI = join(import.meta.dirname, '../cli/main.ts');
const HOUR: LakePartition = partitionOf(Date.UTC(2024, 4, 1, 0, 30));
const OTHER_HOUR: LakePartition = partitionOf(Date.UTC(2024, 4, 1, 1, 30));
const root = lakeFolder('compaction-');
const buildLake = writeSinkLikeLake;

let instance: DuckDBInstance;
let db: DuckDBConnection;

beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
  db = await instance.connect();
});

afterAll(() => {
  db?.closeSync();
  instance?.closeSync();
});

/** What a reader sees through the lake's SQL views (which read only live files): rows and distinct ids of vehicle. */
async function readerView(dir: string): Promise<{ rows: number; ids: number; files: number }> {
  const store = createLocalFolderStore(dir);
  try {
    const keys = liveFiles((await store.list(tablePrefix('vehicle'))).filter((k) => k.endsWith('.parquet')));
    const { rows } = await queryLake(dir, 'SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM vehicle');
    return { rows: Number(rows[0]?.n), ids: Number(rows[0]?.d), files: keys.length };
  } finally {
    await store.close();
  }
}

async function parquetFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'curated'), { recursive: true }).catch(() => []);
  return entries.filter((e) => e.endsWith('.parquet')).sort();
}

describe('liveFiles', () => {
  const p = partitionPrefix('vehicle', HOUR);
  const input = (tp: number, first: number) => dataFileKey('vehicle', HOUR, { topic: 't', partition: tp, firstOffset: BigInt(first) });
  const merged = (tp: number, first: number, last: number) => p + mergedFileName('t', tp, BigInt(first), BigInt(last));

  it('hides inputs inside a merged range of the same topic-partition and folder, nothing else', () => {
    const other = dataFileKey('vehicle', OTHER_HOUR, { topic: 't', partition: 0, firstOffset: 20n });
    const keys = [input(0, 10), input(0, 20), input(0, 30), input(0, 41), input(1, 20), merged(0, 10, 40), other, `${p}notes.txt`];
    expect(liveFiles(keys)).toEqual([input(0, 41), input(1, 20), merged(0, 10, 40), other, `${p}notes.txt`]);
  });

  it('hides a merged file inside a wider one (re-compaction) and keeps inputs hidden by either', () => {
    const keys = [input(0, 10), input(0, 50), merged(0, 10, 40), merged(0, 10, 60)];
    expect(liveFiles(keys)).toEqual([merged(0, 10, 60)]);
  });

  it('parses both kinds of names', () => {
    expect(parseRangeFile(merged(3, 5, 9))).toMatchObject({ topic: 't', kafkaPartition: 3, firstOffset: 5n, lastOffset: 9n, merged: true });
    expect(parseRangeFile(input(3, 5))).toMatchObject({ kafkaPartition: 3, firstOffset: 5n, lastOffset: undefined, merged: false });
    expect(parseRangeFile(`${p}x.parquet`)).toBeUndefined();
    expect(() => mergedFileName('t', 0, 9n, 5n)).toThrow(/bad offset range/);
  });
});

describe('compactPartition', () => {
  it('merges small files per topic-partition, keeps the newest unless sealed, and is idempotent', async () => {
    const dir = join(root, 'basic');
    const total = await buildLake(dir, [
      { partition: HOUR, kafkaPartition: 0, files: 6, rowsPerFile: 50 },
      { partition: HOUR, kafkaPartition: 1, files: 3, rowsPerFile: 40 },
      { partition: OTHER_HOUR, kafkaPartition: 0, files: 2, rowsPerFile: 30 },
    ]);
    expect(await readerView(dir)).toEqual({ rows: total, ids: total, files: 11 });
    const store = createLocalFolderStore(dir);
    try {
      const first = await compactPartition(store, 'vehicle', HOUR, { targetBytes: 10_000_000 });
      // tp 0: 5 of 6 merged; tp 1: 2 of 3 merged; the newest of each stays.
      expect(first.merged.map((m) => m.inputs).sort()).toEqual([2, 5]);
      expect(first.merged.reduce((a, m) => a + m.rows, 0)).toBe(5 * 50 + 2 * 40);
      expect(first).toMatchObject({ filesBefore: 9, filesAfter: 4, deleted: 7, finished: 0, skipped: [] });
      expect(await readerView(dir)).toEqual({ rows: total, ids: total, files: 6 });

      const sealed = await compactPartition(store, 'vehicle', HOUR, { targetBytes: 10_000_000, keepNewest: false });
      expect(sealed).toMatchObject({ filesBefore: 4, filesAfter: 2, deleted: 4 });
      const again = await compactPartition(store, 'vehicle', HOUR, { targetBytes: 10_000_000, keepNewest: false });
      expect(again).toMatchObject({ filesBefore: 2, filesAfter: 2, deleted: 0, merged: [] });
      expect(await readerView(dir)).toEqual({ rows: total, ids: total, files: 4 });
      // The other hour was not touched; the merged names carry the full offset range.
      const files = await parquetFiles(dir);
      expect(files.filter((f) => f.includes('event_hour=1/'))).toHaveLength(2);
      const tp0 = files.map((f) => parseRangeFile(`curated/${f.split('\\').join('/')}`)).find((f) => f?.merged && f.kafkaPartition === 0);
      expect(tp0).toMatchObject({ firstOffset: 1000n, lastOffset: 1000n + 5n * 103n + 98n });
    } finally {
      await store.close();
    }
  });

  it('stops merging at the target size', async () => {
    const dir = join(root, 'target');
    const total = await buildLake(dir, [{ partition: HOUR, kafkaPartition: 0, files: 8, rowsPerFile: 40 }]);
    const store = createLocalFolderStore(dir);
    try {
      const files = await parquetFiles(dir);
      const { size } = await stat(join(dir, 'curated', files[0] as string));
      const result = await compactPartition(store, 'vehicle', HOUR, { targetBytes: size * 3, keepNewest: false });
      expect(result.merged.map((m) => m.inputs)).toEqual([3, 3, 2]);
      expect(await readerView(dir)).toEqual({ rows: total, ids: total, files: 3 });
    } finally {
      await store.close();
    }
  });

  it('rolls forward a run that died after writing the merged file, before or while deleting inputs', async () => {
    const dir = join(root, 'rollforward');
    const total = await buildLake(dir, [{ partition: HOUR, kafkaPartition: 0, files: 5, rowsPerFile: 30 }]);
    const saved = join(root, 'rollforward-inputs');
    await cp(join(dir, 'curated'), saved, { recursive: true });
    const store = createLocalFolderStore(dir);
    try {
      await compactPartition(store, 'vehicle', HOUR, { targetBytes: 10_000_000, keepNewest: false });
      // Put the inputs back: exactly the lake of a run killed right after put() of the merged file.
      await cp(saved, join(dir, 'curated'), { recursive: true });
      expect((await parquetFiles(dir)).length).toBe(6);
      expect(await readerView(dir)).toEqual({ rows: total, ids: total, files: 1 });
      const resumed = await compactPartition(store, 'vehicle', HOUR, { targetBytes: 10_000_000, keepNewest: false });
      expect(resumed).toMatchObject({ deleted: 5, finished: 5, merged: [] });
      expect((await parquetFiles(dir)).length).toBe(1);
      expect(await readerView(dir)).toEqual({ rows: total, ids: total, files: 1 });
    } finally {
      await store.close();
    }
  });

  it('compacts a lake on the S3 protocol (download, put, delete)', async () => {
    const s3 = await startS3();
    onTeardown(() => s3.stop());
    const store = createS3Store({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, prefix: 'lake' });
    onTeardown(() => store.close());
    const local = tempDir('compaction-s3-copy-');
    // The lake writer closes the store it was given: build through a second store on the same bucket.
    const total = await buildLake(createS3Store({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, prefix: 'lake' }), [
      { partition: HOUR, kafkaPartition: 0, files: 4, rowsPerFile: 25 },
    ]);
    const result = await compactPartition(store, 'vehicle', HOUR, { targetBytes: 10_000_000, keepNewest: false });
    expect(result).toMatchObject({ filesBefore: 4, filesAfter: 1, deleted: 4 });
    const keys = await store.list(tablePrefix('vehicle'));
    expect(keys).toHaveLength(1);
    expect(parseRangeFile(keys[0] as string)).toMatchObject({ merged: true, firstOffset: 1000n });
    // Read it back through the store and count.
    const copy = join(local, 'a.parquet');
    await store.download?.(keys[0] as string, copy);
    const row = (await db.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM read_parquet(${quotedString(copy)})`)).getRowObjects()[0];
    expect({ n: Number(row?.n), d: Number(row?.d) }).toEqual({ n: total, d: total });
  });

  it('names the bad option', async () => {
    const store = createLocalFolderStore(join(root, 'bad'));
    try {
      await expect(compactPartition(store, 'vehicle', HOUR, { targetBytes: 0 })).rejects.toThrow(/targetBytes/);
      await expect(compactPartition(store, 'vehicle', HOUR, { keepNewest: 'yes' as unknown as boolean })).rejects.toThrow(/keepNewest/);
      await expect(compactLake(store, { tables: ['trams' as 'vehicle'] })).rejects.toThrow(/tables: unknown table trams/);
    } finally {
      await store.close();
    }
  });
});


describe('sink compact (CLI)', () => {
  it('refuses a bad --target-bytes with a usage error', async () => {
    const { code, stderr } = await runCli(CLI, ['compact', '--lake', root, '--target-bytes', '12x']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--target-bytes must be a positive integer/);
  });
});
