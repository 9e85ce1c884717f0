// Dashboard options: a schema gives the type, defaults are merged under what the caller passed, and the
// result is validated once.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { defineOptions, jsonLog, kafkaTopicSet, liveTopicSet, Type, type DeepPartial, type Log, type Static } from '@city/protocol';
import { cloudErrors } from '../errors.ts';
import type { Warehouse } from '../warehouse/port.ts';

const TopicName = Type.String({ pattern: '^[A-Za-z0-9._-]{1,249}$' });
const positiveInt = (maximum: number) => Type.Integer({ minimum: 1, maximum });

/** The event kinds the dashboard shows (phones are left out: citizens are not tracked on the map). */
export const DASHBOARD_KINDS = ['vehicle', 'gps', 'weather', 'air_quality', 'traffic_camera', 'emergency', 'gateway_health'] as const;
export type DashboardKind = (typeof DASHBOARD_KINDS)[number];

export const DashboardSchema = Type.Object(
  {
    brokers: Type.Array(Type.String({ pattern: '^\\S+:\\d{1,5}$' }), { minItems: 1 }),
    /** Interface the HTTP server listens on; the page must not be reachable from elsewhere unless asked. */
    host: Type.String({ minLength: 1 }),
    /** 0 picks a free port. */
    port: Type.Integer({ minimum: 0, maximum: 65_535 }),
    /** A consumer group of its own: every dashboard reads every partition, and commits nothing. */
    groupId: Type.String({ minLength: 1, maxLength: 255 }),
    clientId: Type.String({ minLength: 1, maxLength: 255 }),
    topics: Type.Object(
      {
        events: Type.Object(Object.fromEntries(DASHBOARD_KINDS.map((kind) => [kind, TopicName])) as Record<DashboardKind, typeof TopicName>, { additionalProperties: false }),
        kpi: TopicName,
        alerts: TopicName,
      },
      { additionalProperties: false },
    ),
    /** The sink's consumer group, whose lag per topic the health panel shows (committed offsets vs the end). */
    sinkGroup: Type.String({ minLength: 1, maxLength: 255 }),
    /** The built page (index.html and its assets). */
    pageDir: Type.String({ minLength: 1 }),
    /** A local lake, for its freshness on the health panel. */
    lakeDir: Type.Optional(Type.String({ minLength: 1 })),
    /** Deltas are sent at most this often: the cap on the page's update rate. */
    deltaIntervalMs: Type.Integer({ minimum: 20, maximum: 60_000 }),
    /** Pipeline health (lag, rates, freshness) is sent this often. */
    healthIntervalMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
    heartbeatMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
    /** Messages the replay ring keeps for pages that reconnect. */
    ringSize: positiveInt(1_000_000),
    /** Characters of serialised messages the ring keeps at most. */
    ringBytes: Type.Integer({ minimum: 1024, maximum: 4 * 1024 ** 3 }),
    maxClientBufferBytes: Type.Integer({ minimum: 1024, maximum: 1024 ** 3 }),
    retryMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
    maxVehicles: positiveInt(10_000_000),
    maxStations: positiveInt(1_000_000),
    maxCameras: positiveInt(1_000_000),
    maxIncidents: positiveInt(1_000_000),
    maxGateways: positiveInt(1_000_000),
    maxKpis: positiveInt(1_000_000),
    alertFeed: positiveInt(100_000),
    vehicleTtlMs: positiveInt(24 * 3600_000),
    gatewayOfflineMs: positiveInt(24 * 3600_000),
    sessionTimeoutMs: Type.Integer({ minimum: 1_000, maximum: 3600_000 }),
    closeTimeoutMs: positiveInt(3600_000),
  },
  { additionalProperties: false },
);

export type DashboardConfig = Static<typeof DashboardSchema>;
export type DashboardOptions = DeepPartial<DashboardConfig> & {
  brokers: string[];
  log?: Log;
  /** The warehouse whose load ledger gives its freshness on the health panel (a function: it may open later than the dashboard). */
  warehouse?: (() => Warehouse | undefined) | undefined;
};

/** Where `npm run dashboard:build` (and the CLI, when missing) puts the page. */
export const DEFAULT_PAGE_DIR = join(import.meta.dirname, '..', '..', 'dist', 'dashboard-page');

/** The dashboard's topics for a topic suffix (a test run, a second city on one cluster). */
export function dashboardTopics(suffix?: string): DashboardConfig['topics'] {
  const set = kafkaTopicSet(suffix);
  const live = liveTopicSet(suffix);
  return {
    events: Object.fromEntries(DASHBOARD_KINDS.map((kind) => [kind, set.events[kind]])) as Record<DashboardKind, string>,
    kpi: live.kpi,
    alerts: live.alerts,
  };
}

export const DASHBOARD_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  clientId: 'city-dashboard',
  sinkGroup: 'city-sink',
  pageDir: DEFAULT_PAGE_DIR,
  deltaIntervalMs: 250,
  healthIntervalMs: 1_000,
  heartbeatMs: 15_000,
  ringSize: 2_000,
  ringBytes: 64 * 1024 ** 2,
  maxClientBufferBytes: 16 * 1024 ** 2,
  retryMs: 1_000,
  maxVehicles: 20_000,
  maxStations: 5_000,
  maxCameras: 5_000,
  maxIncidents: 2_000,
  maxGateways: 5_000,
  maxKpis: 10_000,
  alertFeed: 200,
  vehicleTtlMs: 5 * 60_000,
  gatewayOfflineMs: 60_000,
  sessionTimeoutMs: 10_000,
  closeTimeoutMs: 15_000,
} satisfies DeepPartial<DashboardConfig>;

const resolver = defineOptions<typeof DashboardSchema, Omit<DashboardOptions, 'log'>>({
  schema: DashboardSchema,
  defaults: { ...DASHBOARD_DEFAULTS, topics: dashboardTopics() },
  check: (c) => (c.healthIntervalMs < c.deltaIntervalMs ? 'healthIntervalMs must be at least deltaIntervalMs' : undefined),
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', detail),
});

export function resolveDashboardOptions(options: DashboardOptions): { config: DashboardConfig; log: Log; warehouse: (() => Warehouse | undefined) | undefined } {
  const { log = jsonLog('info'), warehouse, ...rest } = options;
  // Each dashboard reads every partition: a shared group would split them between instances.
  const config = resolver.resolve({ ...rest, groupId: rest.groupId ?? `city-dashboard-${randomUUID().slice(0, 8)}` });
  return { config, log, warehouse };
}
