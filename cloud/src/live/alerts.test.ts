// Alert rules without Kafka: minimum duration, hysteresis, escalation, incidents and silent gateways.
import { describe, expect, it } from 'vitest';
import { ALERT_DEFAULTS, AlertEngine } from './alerts.ts';

const T0 = Date.parse('2026-12-01T12:00:00.000Z');
const MIN = 60_000;
/** One 5-minute traffic window starting `i` windows after T0. */
const w = (i: number) => [T0 + i * 5 * MIN, T0 + (i + 1) * 5 * MIN] as const;

describe('alert rules', () => {
  it('raise only after the minimum duration, clear only below the clear level, with one id', () => {
    const e = new AlertEngine({ ...ALERT_DEFAULTS, congestion: { raise: 1.5, critical: 2.5, clear: 1.25, minDurationMs: 10 * MIN, direction: 'above' } });
    expect(e.observe('congestion', 'Centrum', ...w(0), 1.6)).toEqual([]); // 5 min so far
    expect(e.observe('congestion', 'Centrum', ...w(1), 1.2)).toEqual([]); // broken: starts again
    expect(e.observe('congestion', 'Centrum', ...w(2), 1.7)).toEqual([]);
    const [raised] = e.observe('congestion', 'Centrum', ...w(3), 1.8);
    expect(raised).toMatchObject({ alertId: `congestion|Centrum|${new Date(w(2)[0]).toISOString()}`, state: 'raised', value: 1.8, threshold: 1.5, severity: 'warning', raisedAt: new Date(w(3)[1]).toISOString(), clearedAt: null });
    // Inside the band (below raise, above clear): stays raised.
    expect(e.observe('congestion', 'Centrum', ...w(4), 1.3)).toEqual([]);
    // Escalates once.
    expect(e.observe('congestion', 'Centrum', ...w(5), 2.6)).toEqual([expect.objectContaining({ state: 'raised', severity: 'critical', threshold: 2.5, alertId: raised!.alertId })]);
    expect(e.observe('congestion', 'Centrum', ...w(6), 2.7)).toEqual([]);
    // Below clear for the minimum duration.
    expect(e.observe('congestion', 'Centrum', ...w(7), 1.1)).toEqual([]);
    expect(e.observe('congestion', 'Centrum', ...w(8), 1.0)).toEqual([expect.objectContaining({ state: 'cleared', alertId: raised!.alertId, clearedAt: new Date(w(8)[1]).toISOString(), value: 1 })]);
    expect(e.openAlerts()).toBe(0);
  });

  it('ignore an older observation (a late re-emit of an earlier window)', () => {
    const e = new AlertEngine({ ...ALERT_DEFAULTS, aqi: { ...ALERT_DEFAULTS.aqi, minDurationMs: 0 } });
    expect(e.observe('aqi', 'aq-1', T0 + 3_600_000, T0 + 7_200_000, 40)).toEqual([]);
    expect(e.observe('aqi', 'aq-1', T0, T0 + 3_600_000, 180)).toEqual([]);
  });

  it('raise a new high-severity incident once and clear it when it closes; lower severities are not alerts', () => {
    const e = new AlertEngine(ALERT_DEFAULTS);
    expect(e.incident('inc-1', T0, 'low', 'open', 'x')).toEqual([]);
    expect(e.incident('inc-2', T0, 'critical', 'open', 'fire/building')).toEqual([expect.objectContaining({ alertId: 'incident|inc-2', state: 'raised', severity: 'critical' })]);
    expect(e.incident('inc-2', T0 + MIN, 'critical', 'inProgress', 'fire/building')).toEqual([]);
    expect(e.incident('inc-2', T0 + 2 * MIN, 'critical', 'closed', 'fire/building')).toEqual([expect.objectContaining({ state: 'cleared', clearedAt: new Date(T0 + 2 * MIN).toISOString() })]);
  });

  it('take a gateway offline after its silence and back on its next report', () => {
    const e = new AlertEngine({ ...ALERT_DEFAULTS, gatewayOfflineMs: 3 * MIN });
    expect(e.gatewayReport('gw-1', T0, T0)).toEqual([]);
    expect(e.checkGateways(T0 + 2 * MIN)).toEqual([]);
    const [offline] = e.checkGateways(T0 + 4 * MIN);
    expect(offline).toMatchObject({ rule: 'gateway_offline', key: 'gw-1', state: 'raised', severity: 'critical', value: 240, threshold: 180 });
    expect(e.checkGateways(T0 + 5 * MIN)).toEqual([]);
    expect(e.gatewayReport('gw-1', T0 + 5 * MIN, T0 + 5 * MIN)).toEqual([expect.objectContaining({ state: 'cleared', alertId: offline!.alertId })]);
  });
});
