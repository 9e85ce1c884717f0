// `sink query` as a user runs it: named queries on a local lake, usage errors, an S3 lake through a cache.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exampleEvent } from '@city/protocol';
import { runCli } from '../../../test/support/cli.ts';
import { lakeFolder, rowsOf, writeLake } from '../../../test/support/lake.ts';
import { startS3 } from '../../../test/support/s3.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { NAMED_QUERIES } from '../ports/query/named.ts';
import { createS3Store } from '../ports/store/index.ts';

const CLI = join(import.meta.dirname, 'main.ts');
// Without the caller's Athena settings, so the usage errors below are the ones a bare shell gives.
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(CLI, args, { env: { ATHENA_WORKGROUP: undefined, ATHENA_DATABASE: undefined, ...env }, timeoutMs: 60_000 });

describe('cli query --named', () => {
  const dir = lakeFolder('cloud-cli-named-');
  beforeAll(async () => {
    const at = (minute: number) => new Date(Date.UTC(2024, 4, 1, 10, minute)).toISOString();
    const events = [
      exampleEvent('traffic_camera', { eventId: 'c-1', deviceId: 'cam-9', dateObserved: at(0), intensity: 12, congested: true }),
      exampleEvent('traffic_camera', { eventId: 'c-2', deviceId: 'cam-9', dateObserved: at(30), intensity: 30, congested: false }),
    ];
    await writeLake(dir, [
      {
        table: 'traffic_camera',
        partition: { event_date: '2024-05-01', event_hour: 10 },
        topic: 'city.traffic_camera.v1',
        kafkaPartition: 0,
        firstOffset: 0n,
        lastOffset: 1n,
        rows: rowsOf('traffic_camera', events, { gatewayId: 'gw-c', receivedAt: Date.UTC(2024, 4, 1, 11) }),
      },
    ]);
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
      [['query', '--named', 'open_incidents', '--engine', 'presto'], /--engine must be duckdb, athena or warehouse/],
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
    onTeardown(() => s3.stop());
    const cache = tempDir('cloud-cli-s3cache-');
    const at = (minute: number) => new Date(Date.UTC(2024, 4, 1, 7, minute)).toISOString();
    const events = [3, 4].map((n, i) => exampleEvent('traffic_camera', { eventId: `s3-${i}`, deviceId: 'cam-s3', dateObserved: at(i), intensity: n }));
    await writeLake(createS3Store({ bucket: s3.bucket, prefix: 'lake', endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials }), [
      {
        table: 'traffic_camera',
        partition: { event_date: '2024-05-01', event_hour: 7 },
        topic: 'city.traffic_camera.v1',
        kafkaPartition: 0,
        firstOffset: 0n,
        lastOffset: 1n,
        rows: rowsOf('traffic_camera', events, { gatewayId: 'gw-s3', receivedAt: Date.UTC(2024, 4, 1, 8) }),
      },
    ]);
    const args = ['query', '--s3-bucket', s3.bucket, '--s3-prefix', 'lake', '--s3-endpoint', s3.endpoint, '--s3-region', s3.region, '--lake', cache];
    const env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
    const first = await cli([...args, '--named', 'traffic_per_camera_hour'], env);
    expect(first.stderr).toContain('1 downloaded, 0 kept, 0 removed');
    expect(first.code).toBe(0);
    expect(first.stdout.trim().split('\n')[2]?.split('|').map((c) => c.trim())).toEqual(['2024-05-01T07:00:00.000Z', 'cam-s3', '2', '7', '0.18', '0']);
    const again = await cli([...args, 'SELECT count(*) AS n FROM traffic_camera'], env);
    expect(again.stderr).toContain('0 downloaded, 1 kept, 0 removed');
    expect(again.stdout).toMatch(/^n\n-\n2\n\(1 row\)\n$/);
  });
});
