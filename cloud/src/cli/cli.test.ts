// The sink's command line, run as a user runs it: exit codes, usage, output of query.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EVENT_KINDS } from '@city/protocol';
import { runCli } from '../../../test/support/cli.ts';
import { lakeFolder, rowsOf, sampleEvent, writeLake } from '../../../test/support/lake.ts';
import { formatTable } from './table.ts';

const CLI = join(import.meta.dirname, 'main.ts');
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(CLI, args, { env, timeoutMs: 30_000 });

describe('cli', () => {
  const dir = lakeFolder('cloud-cli-');
  beforeAll(async () => {
    await writeLake(join(dir, 'lake'), [
      {
        table: 'gps',
        partition: { event_date: '2024-05-01', event_hour: 0 },
        topic: 'city.gps.v1',
        kafkaPartition: 0,
        firstOffset: 0n,
        lastOffset: 2n,
        rows: rowsOf('gps', [0, 1, 2].map((i) => sampleEvent('gps', i)), { gatewayId: 'gw-c', receivedAt: Date.UTC(2024, 4, 1) }),
      },
    ]);
  });

  it('prints row counts per table when given no SQL', async () => {
    const { code, stdout } = await cli(['query', '--lake', join(dir, 'lake')]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^table\s+\| rows$/);
    expect(lines).toContain('gps            |    3');
    expect(lines).toContain('vehicle        |    0');
    expect(lines).toHaveLength(2 + EVENT_KINDS.length + 1 + 1);
    expect(lines.at(-1)).toBe('(9 rows)');
  });

  it('prints the result of a query as an aligned table', async () => {
    const { code, stdout } = await cli(['query', '--lake', join(dir, 'lake'), 'SELECT seq, event_id, hdop, date_observed FROM gps ORDER BY seq']);
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        'seq | event_id | hdop | date_observed',
        '----+----------+------+-------------------------',
        '  0 | ev-gps-0 |  0.8 | 2024-05-01T00:00:00.000Z',
        '  1 | ev-gps-1 | NULL | 2024-05-01T00:00:01.000Z',
        '  2 | ev-gps-2 |  0.8 | 2024-05-01T00:00:02.000Z',
        '(3 rows)',
        '',
      ].join('\n'),
    );
  });

  it('exits 1 with the DuckDB message on bad SQL', async () => {
    const { code, stderr } = await cli(['query', '--lake', join(dir, 'lake'), 'SELECT nope FROM gps']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^sink: CLD_QUERY: query failed: .*nope/);
  });

  it('exits 2 with usage on bad flags', async () => {
    const unknown = await cli(['query', '--lake', dir, '--bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/CLD_USAGE.*--bogus/);
    expect(unknown.stderr).toMatch(/usage:/);
    expect((await cli(['query'])).stderr).toMatch(/--lake is required/);
    expect((await cli(['frobnicate'])).stderr).toMatch(/unknown command "frobnicate"/);
    const noBrokers = await cli(['run', '--lake', dir]);
    expect(noBrokers.code).toBe(2);
    expect(noBrokers.stderr).toMatch(/--brokers is required \(or set KAFKA_BROKERS\)/);
    const badNumber = await cli(['run', '--lake', dir, '--brokers', 'localhost:9092', '--max-rows', '-5']);
    expect(badNumber.code).toBe(2);
    const badOption = await cli(['run', '--lake', dir, '--max-rows', '0'], { KAFKA_BROKERS: 'localhost:9092' });
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toMatch(/\/maxRows must be >= 1/);
  });

  it('prints usage for --help on every command and exits 0', async () => {
    for (const [args, first] of [
      [['--help'], /^usage:\n  sink run /],
      [['help'], /^usage:\n  sink run /],
      [['run', '--help'], /^usage:\n  sink run .*--compact-every-ms/s],
      [['query', '-h'], /^usage:\n  sink query /],
      [['compact', '--help'], /^usage:\n  sink compact /],
    ] as const) {
      const { code, stdout, stderr } = await cli([...args]);
      expect(code, args.join(' ')).toBe(0);
      expect(stdout, args.join(' ')).toMatch(first);
      expect(stderr, args.join(' ')).toBe('');
    }
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/a command is required/);
  });

  it('formats NULLs, nested values and an empty result', () => {
    expect(formatTable({ columns: ['a', 'b'], rows: [{ a: null, b: [1, { x: 'y' }] }] })).toBe(
      'a    | b\n-----+--------------\nNULL | [1,{"x":"y"}]\n(1 row)\n',
    );
    expect(formatTable({ columns: ['n'], rows: [] })).toBe('n\n-\n(0 rows)\n');
  });
});
