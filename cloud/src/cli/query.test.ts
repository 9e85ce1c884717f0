import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventRow, exampleEvent } from '@city/protocol';
import { createLakeWriter } from './lake-writer.ts';
import { startS3 } from '../../test/support/s3.ts';
import { NAMED_QUERIES } from './queries.ts';
import { createS3Store } from './s3-store.ts';
import { createLocalFolderStore } from './store.ts';

const CLI = join(import.meta.dirname, 'cli.ts');

async function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const { ATHENA_WORKGROUP: _w, ATHENA_DATABASE: _d, ...env } = process.env;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('cli query --named', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloud-cli-named-'));
    const lake = await createLakeWriter(createLocalFolderStore(dir));
    const at = (minute: number) => new Date(Date.UTC(2024, 4, 1, 10, minute)).toISOString();
    const events = [
      exampleEvent('traffic_camera', { eventId: 'c-1', deviceId: 'cam-9', dateObserved: at(0), intensity: 12, congested: true }),
      exampleEvent('traffic_camera', { eventId: 'c-2', deviceId: 'cam-9', dateObserved: at(30), intensity: 30, congested: false }),
    ];
    await lake.write({
      table: 'traffic_camera',
      partition: { event_date: '2024-05-01', event_hour: 10 },
      topic: 'city.traffic_camera.v1',
      kafkaPartition: 0,
      firstOffset: 0n,
      lastOffset: 1n,
      rows: events.map((e) => eventRow('traffic_camera', e, { gatewayId: 'gw-c', receivedAt: Date.UTC(2024, 4, 1, 11) })),
    });
    await lake.close();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the named queries', async () => {
    const { code, stdout } = await cli(['query', '--list']);
    expect(code).toBe(0);
    for (const q of NAMED_QUERIES) expect(stdout).toContain(q.name);
  });

  it('runs a named query on the local lake', async () => {
    const { code, stdout } = await cli(['query', '--lake', dir, '--named', 'traffic_per_camera_hour', '--param', 'from=2024-05-01']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^hour_start\s+\| camera \| periods \| vehicles \| avg_occupancy \| congested_periods$/);
    expect(lines[2]?.split('|').map((c) => c.trim())).toEqual(['2024-05-01T10:00:00.000Z', 'cam-9', '2', '42', '0.18', '1']);
    expect(lines.at(-1)).toBe('(1 row)');
    const later = await cli(['query', '--lake', dir, '--named', 'traffic_per_camera_hour', '--param', 'from=2024-05-02']);
    expect(later.stdout).toContain('(0 rows)');
  });

  it('prints the Athena SQL and refuses bad input as usage errors', async () => {
    const printed = await cli(['query', '--named', 'speed_by_district_5m', '--engine', 'athena', '--print-sql']);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain('to_unixtime(date_observed)');
    const cases: [string[], RegExp][] = [
      [['query', '--named', 'nope', '--lake', dir], /unknown query "nope"/],
      [['query', '--named', 'open_incidents', '--param', 'from=yesterday', '--lake', dir], /parameter from="yesterday" must match/],
      [['query', '--named', 'open_incidents', '--param', 'from'], /--param from: expected NAME=VALUE/],
      [['query', '--named', 'open_incidents', '--engine', 'presto'], /--engine must be duckdb or athena/],
      [['query', '--named', 'open_incidents', '--engine', 'athena'], /needs --workgroup and --database/],
      [['query', '--named', 'open_incidents', '--lake', dir, 'SELECT 1'], /either --named or SQL/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await cli(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(message);
    }
  });
});

describe('cli query over an S3 lake', () => {
  it('mirrors the objects into the --lake cache and answers from it', async () => {
    const s3 = await startS3();
    const cache = await mkdtemp(join(tmpdir(), 'cloud-cli-s3cache-'));
    try {
      const lake = await createLakeWriter(
        createS3Store({ bucket: s3.bucket, prefix: 'lake', endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials }),
      );
      const at = (minute: number) => new Date(Date.UTC(2024, 4, 1, 7, minute)).toISOString();
      await lake.write({
        table: 'traffic_camera',
        partition: { event_date: '2024-05-01', event_hour: 7 },
        topic: 'city.traffic_camera.v1',
        kafkaPartition: 0,
        firstOffset: 0n,
        lastOffset: 1n,
        rows: [3, 4].map((n, i) =>
          eventRow('traffic_camera', exampleEvent('traffic_camera', { eventId: `s3-${i}`, deviceId: 'cam-s3', dateObserved: at(i), intensity: n }), {
            gatewayId: 'gw-s3',
            receivedAt: Date.UTC(2024, 4, 1, 8),
          }),
        ),
      });
      await lake.close();
      const args = ['query', '--s3-bucket', s3.bucket, '--s3-prefix', 'lake', '--s3-endpoint', s3.endpoint, '--s3-region', s3.region, '--lake', cache];
      const env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
      const first = await cli([...args, '--named', 'traffic_per_camera_hour'], env);
      expect(first.stderr).toContain('1 downloaded, 0 kept, 0 removed');
      expect(first.code).toBe(0);
      expect(first.stdout.trim().split('\n')[2]?.split('|').map((c) => c.trim())).toEqual(['2024-05-01T07:00:00.000Z', 'cam-s3', '2', '7', '0.18', '0']);
      const again = await cli([...args, 'SELECT count(*) AS n FROM traffic_camera'], env);
      expect(again.stderr).toContain('0 downloaded, 1 kept, 0 removed');
      expect(again.stdout).toMatch(/^n\n-\n2\n\(1 row\)\n$/);
    } finally {
      await s3.stop();
      await rm(cache, { recursive: true, force: true });
    }
  });
});
