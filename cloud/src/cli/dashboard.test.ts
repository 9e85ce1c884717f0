// `sink dashboard` as a user runs it: prints its address, serves the page and its health, stops on SIGINT.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli, spawnCli } from '../../../test/support/cli.ts';
import { ensureTopics } from '../../../test/support/kafka.ts';
import { dashboardTopics } from '../dashboard/options.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, 'main.ts');

describe('sink dashboard', () => {
  it('refuses a missing --brokers as a usage error', async () => {
    const result = await runCli(CLI, ['dashboard', '--port', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/CLD_USAGE: .*--brokers/);
  });

  it('prints its address, serves the page, the stream and /healthz, and exits 0 on SIGINT', async () => {
    const suffix = `dcli${randomUUID().slice(0, 8)}`;
    const topics = dashboardTopics(suffix);
    // Without the live engine's topics: the dashboard starts and names them as missing.
    await ensureTopics(brokers, Object.values(topics.events).map((topic) => ({ topic, numPartitions: 1 })));
    const cli = spawnCli(CLI, ['dashboard', '--brokers', brokers.join(','), '--port', '0', '--topic-suffix', suffix, '--log-level', 'warn']);
    const [, url] = (await cli.waitForOutput(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/, 90_000)) as RegExpMatchArray & [string, string];
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-encoding')).toBeNull();
    expect(await page.text()).toContain('<canvas id="map"');
    expect((await fetch(new URL('city.geojson', url))).headers.get('content-type')).toBe('application/geo+json');
    // An encoded path out of the page folder (the default one sits three levels below the repository's package.json).
    expect((await fetch(`${url}..%2f..%2f..%2fpackage.json`)).status).toBe(404);
    const health = (await (await fetch(new URL('healthz', url))).json()) as { missing: string[] };
    expect(health.missing.sort()).toEqual([topics.alerts, topics.kpi].sort());
    const events = await fetch(new URL('events', url), { headers: { 'accept-encoding': 'gzip' } });
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(events.headers.get('content-encoding')).toBeNull();
    const reader = events.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^retry: \d+/);
    await reader.cancel();
    cli.signal('SIGINT');
    const result = await cli.exited;
    expect(result.code, result.stderr).toBe(0);
    // The first start after a change to the page builds it (Vite): allow for that on a busy machine.
  }, 180_000);
});
