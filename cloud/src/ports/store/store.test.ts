// The object store port: the same contract tests against the local folder and against S3 spoken for real
// (s3rver on localhost), plus S3 behind a proxy that fails some requests.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, startS3, type TestS3 } from '../../../../test/support/s3.ts';
import { createLocalFolderStore } from './local.ts';
import type { ObjectStore } from './port.ts';
import { createS3Store } from './s3.ts';

let s3: TestS3;
let folder: string;

beforeAll(async () => {
  s3 = await startS3();
  folder = await mkdtemp(join(tmpdir(), 'store-test-'));
});

afterAll(async () => {
  await s3?.stop();
  if (folder !== undefined) await rm(folder, { recursive: true, force: true });
});

let seq = 0;
const stores: [string, () => ObjectStore][] = [
  ['local folder', () => createLocalFolderStore(join(folder, `lake-${++seq}`))],
  [
    'S3 (s3rver)',
    () => createS3Store({ bucket: s3.bucket, prefix: `lake-${++seq}`, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials }),
  ],
];

describe.each(stores)('object store: %s', (_name, make) => {
  it('puts objects atomically, replaces on the same key, lists sorted keys under a prefix', async () => {
    const store = make();
    try {
      const put = async (key: string, text: string) => {
        const scratch = await store.scratchPath(key);
        await writeFile(scratch, text);
        await store.put(key, scratch);
      };
      await put('curated/kind=vehicle/event_date=2026-01-01/event_hour=3/t+0+1.parquet', 'first');
      await put('curated/kind=vehicle/event_date=2026-01-01/event_hour=3/t+0+1.parquet', 'second');
      await put('curated/kind=vehicle/event_date=2026-01-01/event_hour=12/t+0+2.parquet', 'x');
      await put('deadletter/event_date=2026-01-01/event_hour=3/t+0+3.parquet', 'y');
      expect(await store.list('curated/')).toEqual([
        'curated/kind=vehicle/event_date=2026-01-01/event_hour=12/t+0+2.parquet',
        'curated/kind=vehicle/event_date=2026-01-01/event_hour=3/t+0+1.parquet',
      ]);
      expect(await store.list('nothing/')).toEqual([]);
      const location = store.locate('curated/kind=vehicle/event_date=2026-01-01/event_hour=3/t+0+1.parquet');
      expect(await readObject(location)).toBe('second');
      const copy = join(folder, `copy-${++seq}`);
      await store.download?.('curated/kind=vehicle/event_date=2026-01-01/event_hour=3/t+0+1.parquet', copy);
      expect(await readFile(copy, 'utf8')).toBe('second');
      await store.delete?.('deadletter/event_date=2026-01-01/event_hour=3/t+0+3.parquet');
      await store.delete?.('deadletter/event_date=2026-01-01/event_hour=3/t+0+3.parquet');
      expect(await store.list('deadletter/')).toEqual([]);
      // put() consumed the scratch file; discard of a missing one is fine.
      const scratch = await store.scratchPath('a/b.parquet');
      await writeFile(scratch, 'z');
      await store.discard(scratch);
      await expect(readFile(scratch)).rejects.toThrow();
    } finally {
      await store.close();
      await store.close();
    }
  });

  it('refuses bad keys and use after close', async () => {
    const store = make();
    const scratch = await store.scratchPath('k');
    await writeFile(scratch, 'x');
    await expect(store.put('../escape', scratch)).rejects.toThrow(/bad object key/);
    await store.close();
    await expect(store.scratchPath('k')).rejects.toMatchObject({ code: 'CLD_CLOSED' });
  });
});

describe('S3 store', () => {
  it('validates its options, naming the field', () => {
    expect(() => createS3Store({ bucket: 'Bad_Bucket' })).toThrow(/bucket/);
    expect(() => createS3Store({ bucket: 'ok-bucket', prefix: '/lake/' })).toThrow(/prefix/);
    expect(() => createS3Store({ bucket: 'ok-bucket', endpoint: 'localhost:9000' })).toThrow(/endpoint/);
  });

  it('reports a failed put with a retryable catalogued error and succeeds through intermittent faults', async () => {
    const proxy = await startFaultProxy(s3.endpoint, { everyNth: 2 });
    const store = createS3Store({ bucket: s3.bucket, prefix: 'faulty', endpoint: proxy.endpoint, region: s3.region, credentials: s3.credentials, maxAttempts: 1 });
    try {
      let failures = 0;
      for (let i = 0; i < 6; i++) {
        for (;;) {
          const scratch = await store.scratchPath(`f${i}`);
          await writeFile(scratch, `body ${i}`);
          try {
            await store.put(`f/${i}.parquet`, scratch);
            break;
          } catch (err) {
            expect(err).toMatchObject({ code: 'CLD_STORE_PUT', canRetry: true });
            await store.discard(scratch);
            failures++;
          }
        }
      }
      expect(failures).toBeGreaterThan(0);
      expect(proxy.faults['503'] + proxy.faults['500'] + proxy.faults.drop).toBeGreaterThanOrEqual(failures);
      for (let i = 0; i < 6; i++) expect(await readObject(`s3://${s3.bucket}/faulty/f/${i}.parquet`)).toBe(`body ${i}`);
    } finally {
      await store.close();
      await proxy.stop();
    }
  });
});

async function readObject(location: string): Promise<string> {
  if (!location.startsWith('s3://')) return readFile(location, 'utf8');
  const [bucket, ...rest] = location.slice('s3://'.length).split('/');
  const reply = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: rest.join('/') }));
  return (await reply.Body?.transformToString()) ?? '';
}
