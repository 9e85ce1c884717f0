// `npm run kafka -- …` as a user runs it: help, usage errors, and the topics command against the broker.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli } from '../../test/support/cli.ts';
import { standardTopics } from './index.ts';

const CLI = join(import.meta.dirname, 'cli.ts');
const brokers = inject('kafkaBrokers');

describe('kafka command line', () => {
  it('prints usage for --help on every command and exits 0; usage errors exit 2', async () => {
    const help = [['--help'], ['fetch', '--help'], ['start', '--help'], ['topics', '--help'], ['help']];
    const bad = [[], ['bogus'], ['start', '--prot', '1'], ['start', '--port', 'abc'], ['topics'], ['topics', '--brokers', 'nohost'], ['start', '--no-topics', '--topic-suffix', 'x']];
    const results = await Promise.all([...help, ...bad].map((args) => runCli(CLI, args)));
    for (const [i, args] of help.entries()) {
      expect(results[i], args.join(' ')).toMatchObject({ code: 0, stderr: '' });
      expect(results[i]!.stdout).toMatch(/^usage: npm run kafka -- /);
    }
    for (const [i, args] of bad.entries()) {
      const result = results[help.length + i]!;
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/^kafka: KAFKA_(USAGE|INVALID_OPTION): /);
      expect(result.stdout).toBe('');
    }
  });

  it('topics creates the standard topics with their partition counts, and again finds them there', async () => {
    const suffix = `cli${randomUUID().slice(0, 8)}`;
    const first = await runCli(CLI, ['topics', '--brokers', brokers.join(','), '--topic-suffix', suffix]);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stdout.trim().split('\n');
    const specs = standardTopics(suffix);
    expect(lines).toHaveLength(specs.length);
    for (const spec of specs) expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${spec.topic.replaceAll('.', '\\.')} +${spec.numPartitions} partitions  created$`)));
    // KAFKA_BROKERS stands in for --brokers.
    const again = await runCli(CLI, ['topics', '--topic-suffix', suffix], { env: { KAFKA_BROKERS: brokers.join(',') } });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim().split('\n').every((line) => line.endsWith('  exists'))).toBe(true);
  });
});
