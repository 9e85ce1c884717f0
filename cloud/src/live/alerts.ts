// Alerts that raise and clear: threshold rules with hysteresis (raise at one level, clear only below
// another) and a minimum duration (the condition must hold that long, by event time, before the
// state changes), plus incident and gateway rules. Thresholds are configuration (AlertConfig).
// An alert's id is its rule, key and the event time its condition began, so a replay raises the same id.
import { Type, type LiveAlertRecord, type Static } from '@city/protocol';

const Threshold = Type.Object(
  {
    /** Value at or beyond which the alert raises as a warning. */
    raise: Type.Number(),
    /** Value at or beyond which a raised alert is critical. */
    critical: Type.Number(),
    /** A raised alert clears only once the value is back beyond this (the hysteresis band). */
    clear: Type.Number(),
    /** How long (event time) the condition must hold before raising, and its opposite before clearing. */
    minDurationMs: Type.Integer({ minimum: 0 }),
    /** 'above': raise when value ≥ raise; 'below': when value ≤ raise. */
    direction: Type.Union([Type.Literal('above'), Type.Literal('below')]),
  },
  { additionalProperties: false },
);
export type Threshold = Static<typeof Threshold>;

export const AlertConfigSchema = Type.Object(
  {
    /** Travel-time index per district per 5 minutes (traffic_district_5m). */
    congestion: Threshold,
    /** US EPA PM2.5 AQI per station per hour (air_quality_station_hour aqi_pm25): 151 is "unhealthy". */
    aqi: Threshold,
    /** Wind speed of one weather observation, m/s. */
    wind: Threshold,
    /** Strongest wind of the hour (weather_station_hour max_wind_speed), m/s. */
    gust: Threshold,
    /** Air temperature of one observation, °C. */
    heat: Threshold,
    /** Relative humidity of one observation (0–1), a stand-in for fog (no visibility on the wire). */
    fog: Threshold,
    /** Gateway buffer depth (messages waiting) in its health reports. */
    backlog: Threshold,
    /** A gateway whose last health report is older than this (wall clock) is offline. */
    gatewayOfflineMs: Type.Integer({ minimum: 1_000 }),
    /** Incident severities that raise an incident alert. */
    incidentSeverities: Type.Array(Type.String(), { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type AlertConfig = Static<typeof AlertConfigSchema>;

export const ALERT_DEFAULTS: AlertConfig = {
  congestion: { raise: 1.5, critical: 2.5, clear: 1.25, minDurationMs: 300_000, direction: 'above' },
  aqi: { raise: 151, critical: 201, clear: 101, minDurationMs: 0, direction: 'above' },
  wind: { raise: 17.2, critical: 24.5, clear: 13.9, minDurationMs: 120_000, direction: 'above' },
  gust: { raise: 20.8, critical: 28.5, clear: 17.2, minDurationMs: 0, direction: 'above' },
  heat: { raise: 30, critical: 35, clear: 28, minDurationMs: 600_000, direction: 'above' },
  fog: { raise: 0.97, critical: 0.995, clear: 0.93, minDurationMs: 600_000, direction: 'above' },
  backlog: { raise: 10_000, critical: 100_000, clear: 1_000, minDurationMs: 60_000, direction: 'above' },
  gatewayOfflineMs: 180_000,
  incidentSeverities: ['high', 'critical'],
};

export type ThresholdRule = 'congestion' | 'aqi' | 'wind' | 'gust' | 'heat' | 'fog' | 'backlog';
export type AlertRule = ThresholdRule | 'incident' | 'gateway_offline';

/** One raise, escalation or clear: a record of the alerts topic. */
export type Alert = LiveAlertRecord & { rule: AlertRule };

interface RuleState {
  pendingSince: number | undefined;
  clearSince: number | undefined;
  lastAt: number;
  raised: Alert | undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();

const WHAT: Record<ThresholdRule, (key: string) => string> = {
  congestion: (k) => `congestion in ${k} (travel-time index)`,
  aqi: (k) => `air quality at ${k} (PM2.5 AQI)`,
  wind: (k) => `strong wind at ${k} (m/s)`,
  gust: (k) => `gusts at ${k} (m/s)`,
  heat: (k) => `heat at ${k} (°C)`,
  fog: (k) => `fog likely at ${k} (relative humidity)`,
  backlog: (k) => `backlog growing on gateway ${k} (messages waiting)`,
};

export class AlertEngine {
  readonly #c: AlertConfig;
  readonly #states = new Map<string, RuleState>();
  readonly #gateways = new Map<string, { lastReport: number; offline: Alert | undefined }>();
  readonly #incidents = new Map<string, Alert>();

  constructor(config: AlertConfig) {
    this.#c = config;
  }

  /**
   * An observation of a threshold rule's value for `key`, holding over [from, at] in event time
   * (a window's start and end, or one event's time twice). Returns the alert events it caused.
   */
  observe(rule: ThresholdRule, key: string, from: number, at: number, value: number | null): Alert[] {
    if (value === null || !Number.isFinite(value)) return [];
    const t = this.#c[rule];
    const id = `${rule}|${key}`;
    let s = this.#states.get(id);
    if (s === undefined) this.#states.set(id, (s = { pendingSince: undefined, clearSince: undefined, lastAt: Number.NEGATIVE_INFINITY, raised: undefined }));
    // An older observation (a late re-emit of an earlier window) does not move the state back.
    if (at < s.lastAt) return [];
    s.lastAt = at;
    const beyond = (level: number) => (t.direction === 'above' ? value >= level : value <= level);
    const back = t.direction === 'above' ? value < t.clear : value > t.clear;
    const out: Alert[] = [];
    if (s.raised === undefined) {
      if (!beyond(t.raise)) {
        s.pendingSince = undefined;
        return out;
      }
      s.pendingSince ??= from;
      if (at - s.pendingSince < t.minDurationMs) return out;
      const critical = beyond(t.critical);
      s.raised = {
        alertId: `${id}|${iso(s.pendingSince)}`,
        rule,
        key,
        state: 'raised',
        raisedAt: iso(at),
        clearedAt: null,
        value,
        threshold: critical ? t.critical : t.raise,
        severity: critical ? 'critical' : 'warning',
        message: `${WHAT[rule](key)}: ${value} ${t.direction === 'above' ? '≥' : '≤'} ${critical ? t.critical : t.raise} since ${iso(s.pendingSince)}`,
      };
      s.clearSince = undefined;
      out.push({ ...s.raised });
      return out;
    }
    if (back) {
      s.clearSince ??= from;
      if (at - s.clearSince < t.minDurationMs) return out;
      const cleared: Alert = { ...s.raised, state: 'cleared', clearedAt: iso(at), value, message: `${WHAT[rule](key)} back to ${value} (clears below ${t.clear})` };
      s.raised = undefined;
      s.pendingSince = undefined;
      s.clearSince = undefined;
      out.push(cleared);
      return out;
    }
    s.clearSince = undefined;
    if (s.raised.severity === 'warning' && beyond(t.critical)) {
      // Escalation: the same alert, raised again as critical.
      s.raised = { ...s.raised, severity: 'critical', value, threshold: t.critical, message: `${WHAT[rule](key)}: ${value} ≥ ${t.critical} (critical)` };
      out.push({ ...s.raised });
    }
    return out;
  }

  /** An emergency report: a new incident at a configured severity raises; its closing report clears. */
  incident(incidentId: string, at: number, severity: string, status: string, description: string): Alert[] {
    const open = this.#incidents.get(incidentId);
    if (open === undefined) {
      if (status === 'closed' || !this.#c.incidentSeverities.includes(severity)) return [];
      const rank = this.#c.incidentSeverities.indexOf(severity);
      const alert: Alert = {
        alertId: `incident|${incidentId}`,
        rule: 'incident',
        key: incidentId,
        state: 'raised',
        raisedAt: iso(at),
        clearedAt: null,
        value: rank + 1,
        threshold: 1,
        severity: severity === 'critical' ? 'critical' : 'warning',
        message: `new ${severity} incident ${incidentId}: ${description}`,
      };
      this.#incidents.set(incidentId, alert);
      return [{ ...alert }];
    }
    if (status !== 'closed') return [];
    this.#incidents.delete(incidentId);
    return [{ ...open, state: 'cleared', clearedAt: iso(at), message: `incident ${incidentId} closed` }];
  }

  /** A gateway health report (event time `at`, read at wall time `now`): clears an offline alert. */
  gatewayReport(gatewayId: string, at: number, now: number): Alert[] {
    const g = this.#gateways.get(gatewayId);
    this.#gateways.set(gatewayId, { lastReport: Math.max(at, g?.lastReport ?? at), offline: undefined });
    if (g?.offline === undefined) return [];
    return [{ ...g.offline, state: 'cleared', clearedAt: iso(now), value: 0, message: `gateway ${gatewayId} reports again` }];
  }

  /** Wall-clock check: gateways whose last report is older than gatewayOfflineMs go offline. */
  checkGateways(now: number): Alert[] {
    const out: Alert[] = [];
    for (const [gatewayId, g] of this.#gateways) {
      const silentMs = now - g.lastReport;
      if (g.offline !== undefined || silentMs < this.#c.gatewayOfflineMs) continue;
      g.offline = {
        alertId: `gateway_offline|${gatewayId}|${iso(g.lastReport)}`,
        rule: 'gateway_offline',
        key: gatewayId,
        state: 'raised',
        raisedAt: iso(now),
        clearedAt: null,
        value: Math.round(silentMs / 1000),
        threshold: Math.round(this.#c.gatewayOfflineMs / 1000),
        severity: 'critical',
        message: `gateway ${gatewayId} silent for ${Math.round(silentMs / 1000)} s (last report ${iso(g.lastReport)})`,
      };
      out.push({ ...g.offline });
    }
    return out;
  }

  openAlerts(): number {
    let n = this.#incidents.size;
    for (const s of this.#states.values()) if (s.raised !== undefined) n++;
    for (const g of this.#gateways.values()) if (g.offline !== undefined) n++;
    return n;
  }
}
