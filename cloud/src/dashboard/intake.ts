// Kafka records into the dashboard's state: raw events validated against the event schemas, KPI updates
// and alerts against the fields of the live engine's contract the screen reads (it may add others).
import { compileSchema, LiveAlertRecord, Type, validateEvent, type CityEvent } from '@city/protocol';
import type { AlertView, KpiView } from './messages.ts';
import type { DashboardConfig, DashboardKind } from './options.ts';
import type { CityStateStore } from './state.ts';

const Iso = Type.String({ minLength: 1, maxLength: 40 });

const KpiRecord = Type.Object({
  kpi: Type.String({ minLength: 1, maxLength: 128 }),
  key: Type.String({ minLength: 1, maxLength: 128 }),
  windowStart: Iso,
  windowEnd: Iso,
  final: Type.Boolean(),
  values: Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.Number(), Type.String({ maxLength: 256 }), Type.Boolean(), Type.Null()]), { maxProperties: 64 }),
});

const validateKpi = compileSchema<KpiView>(KpiRecord);
const validateAlert = compileSchema<AlertView>(LiveAlertRecord);

export type Intake = (topic: string, value: Buffer | null) => boolean;

/** Applies one record to the state; false when it does not decode (counted by the caller). */
export function createIntake(topics: DashboardConfig['topics'], state: CityStateStore): Intake {
  const kindByTopic = new Map<string, DashboardKind>(Object.entries(topics.events).map(([kind, topic]) => [topic, kind as DashboardKind]));
  const event = (e: CityEvent) => {
    switch (e.kind) {
      case 'vehicle':
      case 'gps':
        return state.vehicle(e);
      case 'air_quality':
        return state.airQuality(e);
      case 'weather':
        return state.weather(e);
      case 'traffic_camera':
        return state.camera(e);
      case 'emergency':
        return state.incident(e);
      case 'gateway_health':
        return state.gateway(e);
      case 'phone':
        return undefined;
    }
  };
  return (topic, value) => {
    if (value === null) return false;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value.toString('utf8'));
    } catch {
      return false;
    }
    if (topic === topics.kpi) {
      const r = validateKpi(parsed);
      if (!r.ok) return false;
      const { kpi, key, windowStart, windowEnd, final, values } = r.value;
      state.kpi({ kpi, key, windowStart, windowEnd, final, values });
      return true;
    }
    if (topic === topics.alerts) {
      const r = validateAlert(parsed);
      if (!r.ok) return false;
      const { alertId, rule, key, state: s, raisedAt, clearedAt, value: v, threshold, severity, message } = r.value;
      state.alert({ alertId, rule, key, state: s, raisedAt, clearedAt, value: v, threshold, severity, message });
      return true;
    }
    const kind = kindByTopic.get(topic);
    if (kind === undefined) return false;
    const r = validateEvent(parsed, kind);
    if (!r.ok) return false;
    event(r.value);
    return true;
  };
}
