// The sink's /healthz against the run's Kafka: 503 before the start and after the close, 200 while it
// runs; and `sink run --http` serves it, with a bad address refused as a usage error.
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli, spawnCli } from '../../../test/support/cli.ts';
import { freePort } from '../../../test/support/net.ts';
import { scenario, startTestSink } from '../../../test/support/sink.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { createSinkHealthServer, type SinkHealthBody } from './health.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, '../cli/main.ts');

async function get(port: number, path = '/healthz'): Promise<{ status: number; body: SinkHealthBody | string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.startsWith('application/json') ? (JSON.parse(text) as SinkHealthBody) : text };
}

describe('sink /healthz', () => {
  it('is 503 until the sink runs, 200 while it runs (with its counters), 503 once it is closed', async () => {
    const s = await scenario(brokers, tempDir('sink-health-'), 'health');
    const sink = startTestSink(brokers, s);
    const health = createSinkHealthServer({ host: '127.0.0.1', port: 0, sink });
    onTeardown(() => health.close());
    const { port } = await health.start();
    expect(await get(port)).toMatchObject({ status: 503, body: { healthy: false, state: 'new', reason: 'sink is new' } });
    await sink.start();
    expect(await get(port)).toMatchObject({ status: 200, body: { healthy: true, state: 'running', stats: { consumed: 0 } } });
    expect((await get(port, '/nope')).status).toBe(404);
    await sink.close();
    expect(await get(port)).toMatchObject({ status: 503, body: { healthy: false, state: 'closed' } });
    await health.close();
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('is served by sink run --http, and a bad address is a usage error', async () => {
    const s = await scenario(brokers, tempDir('sink-health-cli-'), 'healthcli');
    const port = await freePort();
    const run = spawnCli(CLI, ['run', '--brokers', brokers.join(','), '--lake', s.lakeDir, '--topic-suffix', s.id, '--group', s.groupId, '--http', `127.0.0.1:${port}`]);
    const [started] = await run.waitForOutput(/^.*sink started.*$/m);
    // The sink's process decodes records with the sink's stand-in for kafkajs's decoder.
    expect(started).toMatch(/recordDecoder\W+sink\b/);
    expect(await get(port)).toMatchObject({ status: 200, body: { healthy: true } });
    run.signal('SIGTERM');
    expect((await run.exited).code).toBe(0);
    const bad = await runCli(CLI, ['run', '--brokers', brokers.join(','), '--lake', s.lakeDir, '--http', 'nowhere']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/CLD_USAGE.*--http must be \[HOST:\]PORT, got "nowhere"/);
  });
});
