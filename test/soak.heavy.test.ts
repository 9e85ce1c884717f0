// Short offline-buffer soak in the suite: ≥ 2 minutes, ≥ 3 Kafka outages (drop and blackhole through
// a TCP proxy) and ≥ 3 kill -9 of the gateway child process; every acknowledged event must reach
// Kafka. It starts a broker of its own, advertised at the proxy's address (the suite's shared
// broker advertises itself, so a proxy in front of it would be bypassed after bootstrap).
// The long run is `npm run soak -- --minutes 10 --devices 500` (README, "Offline-buffer soak test").
import { silentLog } from '@city/protocol';
import { describe, expect, it } from 'vitest';
import { formatReport, runSoak } from './soak/harness.ts';

describe('offline-buffer soak (short)', () => {
  it('loses no acknowledged event across Kafka outages and kill -9 of the gateway', { timeout: 600_000 }, async () => {
    const report = await runSoak({ minutes: 2, devices: 70, ratePerDevice: 2, minOutages: 3, minKills: 3, drainTimeoutMs: 240_000, seed: Date.now(), log: silentLog });
    process.stderr.write(`[soak.test]\n${formatReport(report)}\n`);
    expect(report.outages.length).toBeGreaterThanOrEqual(3);
    expect(report.kills).toBeGreaterThanOrEqual(3);
    expect(report.acknowledged).toBeGreaterThan(0);
    expect(report.lost).toBe(0);
    expect(report.delivered).toBe(report.acknowledged);
    // Every record carries an event id: repeats of ids are the only duplicates there can be.
    expect(report.recordsWithoutId).toBe(0);
  });
});
