// The whole city on one machine as one component: Kafka (KRaft, or KAFKA_BROKERS) with the standard
// topics → the sink (with the processed zone, the live KPIs and the warehouse) → the dashboard → a
// gateway → a simulated fleet, started in that order and closed in reverse (devices stop, the gateway
// forwards what it holds, the sink flushes and commits, Kafka stops), within one deadline.
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { createLifecycle, defineOptions, lifecycleErrorsFrom, jsonLog, kafkaTopicSet, silentLog, Type, type Log, type Static } from '@city/protocol';
import { createGateway, type Gateway } from '@city/gateway';
import { createDashboard, dashboardTopics, ensurePage, type Dashboard } from '@city/cloud';
import { createFleet, DEFAULT_FLEET, spreadDevices, type Fleet } from '@city/device-sim';
import { ensureStandardTopics, useKafka, type KafkaCluster } from '../kafka/index.ts';
import { cityErrors } from './errors.ts';
import { startCityWarehouse, type CityWarehouse } from './warehouse.ts';
import { createCitySink, type CitySink } from './sink-process.ts';
import { createCityLive, type CityLive } from './live-process.ts';
import { pidFigures, type ProcessFigures } from './processes.ts';
import { createCityGateways, type CityGatewayFigures, type CityGateways } from './gateways.ts';

export { cityErrors };
export { splitEvenly, type CityGatewayFigures, type ProcessFigures } from './gateways.ts';

const CitySchema = Type.Object(
  {
    /** State folder: Kafka's data, the gateway's buffer, the lake. */
    dir: Type.String({ minLength: 1 }),
    /** Gateway MQTT port; a free one when taken (0: always a free one). */
    port: Type.Integer({ minimum: 0, maximum: 65_535 }),
    /** Dashboard HTTP port on 127.0.0.1; a free one when taken (0: always a free one). */
    dashboardPort: Type.Integer({ minimum: 0, maximum: 65_535 }),
    seed: Type.Integer(),
    /** Events per second per device. */
    rate: Type.Number({ minimum: 0, maximum: 10_000 }),
    /** Fleet size over the default small city of 100 devices (each kind keeps at least one). */
    scale: Type.Number({ minimum: 0, maximum: 1_000 }),
    /** Share of deliberately invalid publishes. */
    invalidRate: Type.Number({ minimum: 0, maximum: 0.9 }),
    /** Topics named `<standard>.<suffix>` and a sink group of their own: a second city on one cluster. */
    topicSuffix: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9_-]{1,64}$' })),
    /** Loads the lake into the PGlite warehouse in <dir>/warehouse this often; 0 turns it off. */
    warehouseEveryMs: Type.Integer({ minimum: 0, maximum: 86_400_000 }),
    /** The sink cuts its files after this much record time and wall time (the lake grows every roll; each file costs a fixed part of a flush). */
    rollMs: Type.Integer({ minimum: 1_000, maximum: 3_600_000 }),
    /** Gateways as processes of their own (the gateway CLI), each with its share of the devices in a process of its own; absent: one gateway inside the city's process. */
    gateways: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    /** Simulated devices in all, spread over the kinds like the default fleet; wins over scale. */
    devices: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  { additionalProperties: false },
);

export type CitySettings = Static<typeof CitySchema>;

export interface CityOptions extends Partial<CitySettings> {
  /** The gateway's and the sink's log (default: warnings and errors as JSON lines on stderr). */
  log?: Log;
  /** Kafka launcher progress (default: none). */
  kafkaLog?: Log;
}

export const cityOptions = defineOptions<typeof CitySchema, Omit<CityOptions, 'log' | 'kafkaLog'>>({
  schema: CitySchema,
  defaults: { dir: '.city', port: 1884, dashboardPort: 8080, seed: 1, rate: 1, scale: 1, invalidRate: 0.01, warehouseEveryMs: 15_000, rollMs: 5_000 },
  error: (detail) => cityErrors.create('CITY_INVALID_OPTIONS', detail),
});

/** How long closing every part may take before what is left is forced. */
const CLOSE_DEADLINE_MS = 60_000;

export interface CityStats {
  devices: number;
  connected: number;
  /** Publishes, valid and invalid. */
  published: number;
  accepted: number;
  deadLettered: number;
  buffered: number;
  forwarded: number;
  /** Curated event rows and dead letters (the raw zone's second copy of each event not counted). */
  lakeRows: number;
  lakeFiles: number;
  /** Rows of the live engine's lake tables (alerts, kpi_windows), not in lakeRows. */
  liveRows: number;
  /** Lake objects and rows the warehouse loaded since start. */
  warehouseObjects: number;
  warehouseRows: number;
  /** Processed partitions (re)placed in the warehouse since start, and their rows. */
  warehouseProcessedPartitions: number;
  warehouseProcessedRows: number;
  /** With gateways as processes: each one's figures, its devices' process beside it. */
  gateways?: CityGatewayFigures[];
  /** The city's own process (the dashboard; the gateway and devices without --gateways): CPU time since start and RSS. */
  process: { cpuSeconds: number; rssMb: number };
  /** The sink's process (its Kafka consumer, the lake writer, the processing schedule), the warehouse loader's (PGlite) and the Kafka broker's when the city started it, beside the city's. */
  parts: { sink: ProcessFigures; live?: ProcessFigures; warehouse?: ProcessFigures; kafka?: ProcessFigures };
  /** Event-loop delay of the city's process over the last few seconds (the dashboard's loop). */
  loopDelayMs: { p99: number; max: number };
  /** The sink's own counters: records read from Kafka, rows buffered in open segments, flushes, and errors retried. */
  sink: { consumed: number; buffered: number; flushes: number; commitErrors: number; writeErrors: number; droppedOnRebalance: number };
}

/** Event-loop delay, kept per second for the last LOOP_WINDOW_S seconds so a stats() call reads a recent window without resetting anything. */
const LOOP_WINDOW_S = 5;

function loopDelayWindow(): { read(): { p99: number; max: number }; stop(): void } {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const seconds: { p99: number; max: number }[] = [];
  const timer = setInterval(() => {
    seconds.push({ p99: h.percentile(99) / 1e6, max: h.max / 1e6 });
    if (seconds.length > LOOP_WINDOW_S) seconds.shift();
    h.reset();
  }, 1_000);
  timer.unref();
  return {
    read: () => ({ p99: Math.max(0, ...seconds.map((s) => s.p99)), max: Math.max(0, ...seconds.map((s) => s.max)) }),
    stop() {
      clearInterval(timer);
      h.disable();
    },
  };
}

export interface City {
  readonly settings: Readonly<CitySettings>;
  readonly lakeDir: string;
  /** The PGlite warehouse's folder. */
  readonly warehouseDir: string;
  /** Starts every part in order; a part that fails closes the ones already started. */
  start(): Promise<void>;
  /** Closes once, in reverse order, within one deadline; the same promise for every caller. */
  close(): Promise<void>;
  /** Kafka bootstrap addresses (after start). */
  brokers(): string[];
  /** The gateway's MQTT port (after start); the first one's with several gateways. */
  gatewayPort(): number;
  /** Every gateway's MQTT port (after start). */
  gatewayPorts(): number[];
  /** The operations dashboard's address (after start). */
  dashboardUrl(): string;
  stats(): CityStats;
}

/** Between two processing rounds (each builds only what changed since the last). */
const PROCESS_EVERY_MS = 30_000;

function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => done(true)));
  });
}

export function createCity(options: CityOptions = {}): City {
  const { log = jsonLog('warn'), kafkaLog = silentLog, ...rest } = options;
  const settings = cityOptions.resolve(rest);
  const dir = resolve(settings.dir);
  const lakeDir = join(dir, 'lake');
  const warehouseDir = join(dir, 'warehouse');
  const suffix = settings.topicSuffix;
  const topics = kafkaTopicSet(suffix);
  const life = createLifecycle({
    name: 'city',
    deadlineMs: CLOSE_DEADLINE_MS,
    errors: lifecycleErrorsFrom(cityErrors, { alreadyStarted: 'CITY_ALREADY_STARTED', closed: 'CITY_CLOSED', timeout: 'CITY_CLOSE_TIMEOUT' }),
  });
  let kafka: KafkaCluster | undefined;
  let sink: CitySink | undefined;
  let gateway: Gateway | undefined;
  let dashboard: Dashboard | undefined;
  let fleet: Fleet | undefined;
  let warehouse: CityWarehouse | undefined;
  let gatewayGroup: CityGateways | undefined;
  let loop: ReturnType<typeof loopDelayWindow> | undefined;
  let liveEngine: CityLive | undefined;
  const started = <T>(part: T | undefined, what: string): T => {
    if (part === undefined) throw cityErrors.create('CITY_CLOSED', `${what}: the city is not started`);
    return part;
  };

  return {
    settings,
    lakeDir,
    warehouseDir,
    start: () =>
      life.start(async () => {
        mkdirSync(join(dir, 'logs'), { recursive: true });
        const delay = loopDelayWindow();
        loop = delay;
        life.defer('event-loop monitor', () => delay.stop());
        const cluster = await useKafka({ dataDir: join(dir, 'kafka'), log: kafkaLog });
        kafka = cluster;
        life.defer('kafka', () => cluster.stop());
        await ensureStandardTopics(cluster.brokers, suffix === undefined ? {} : { suffix });

        // The sink runs as a process of its own (the sink CLI, with the processing schedule): in this
        // process its flushes waited behind the live engine's, the dashboard's and PGlite's work.
        // Files cut every roll (5 s by default) of record time even under steady load, so the lake visibly grows; the sink
        // also writes the live engine's KPI and alert topics to the lake (tables kpi_windows, alerts).
        const lake = createCitySink({ brokers: cluster.brokers, lakeDir, logDir: join(dir, 'logs'), topicSuffix: suffix, maxSpanMs: settings.rollMs, maxAgeMs: settings.rollMs, processEveryMs: PROCESS_EVERY_MS, log });
        sink = lake;
        life.defer('sink', () => lake.close());
        await lake.start();
        // Live KPIs and alerts for the dashboard, as their own consumer group (the sink's path is untouched).
        // In a process of its own too (the sink CLI's live command): its batches held this loop for seconds.
        const live = createCityLive({ brokers: cluster.brokers, logDir: join(dir, 'logs'), topicSuffix: suffix, log });
        liveEngine = live;
        life.defer('live', () => live.close());
        await live.start();

        if (settings.warehouseEveryMs > 0) {
          const loading = startCityWarehouse({ lakeDir, dataDir: warehouseDir, everyMs: settings.warehouseEveryMs, logDir: join(dir, 'logs'), log });
          warehouse = loading;
          life.defer('warehouse', () => loading.close());
        }

        // The page is built when missing or stale (Vite, a few seconds) and kept for later runs.
        await ensurePage();
        const dashboardPort = settings.dashboardPort !== 0 && (await portIsFree(settings.dashboardPort)) ? settings.dashboardPort : 0;
        const screen = createDashboard({ brokers: cluster.brokers, port: dashboardPort, topics: dashboardTopics(suffix), sinkGroup: lake.groupId, lakeDir, warehouse: () => warehouse?.warehouse(), log });
        dashboard = screen;
        life.defer('dashboard', () => screen.close());
        await screen.start();

        if (settings.gateways !== undefined) {
          const group = createCityGateways({
            count: settings.gateways,
            devices: settings.devices ?? Object.values(DEFAULT_FLEET).reduce((n, k) => n + Math.max(1, Math.round(k * settings.scale)), 0),
            dir,
            brokers: cluster.brokers,
            topics,
            firstPort: settings.port,
            seed: settings.seed,
            rate: settings.rate,
            invalidRate: settings.invalidRate,
            log,
          });
          gatewayGroup = group;
          life.defer('gateways', () => group.close());
          await group.start();
          return;
        }

        const port = settings.port !== 0 && (await portIsFree(settings.port)) ? settings.port : 0;
        const edge = createGateway(
          { gatewayId: 'gw-local-01', mqtt: { host: '127.0.0.1', port }, buffer: { path: join(dir, 'gateway-buffer.db') }, kafka: { brokers: cluster.brokers }, topics, healthIntervalMs: 10_000 },
          log,
        );
        gateway = edge;
        life.defer('gateway', () => edge.close());
        await edge.start();

        const devices =
          settings.devices !== undefined ? spreadDevices(settings.devices) : Object.fromEntries(Object.entries(DEFAULT_FLEET).map(([kind, n]) => [kind, Math.max(1, Math.round(n * settings.scale))]));
        const sim = createFleet({ url: `mqtt://127.0.0.1:${edge.port()}`, seed: settings.seed, ratePerDevice: settings.rate, devices, invalid: { rate: settings.invalidRate } });
        fleet = sim;
        life.defer('fleet', () => sim.stop());
        await sim.start();
      }),
    close: () => life.close(),
    brokers: () => started(kafka, 'brokers()').brokers,
    gatewayPort: () => (gatewayGroup !== undefined ? gatewayGroup.figures()[0]!.port : started(gateway, 'gatewayPort()').port()),
    gatewayPorts: () => (gatewayGroup !== undefined ? gatewayGroup.figures().map((g) => g.port) : [started(gateway, 'gatewayPorts()').port()]),
    dashboardUrl: () => started(dashboard, 'dashboardUrl()').url(),
    stats() {
      const s = started(sink, 'stats()').stats();
      const liveRows = (s.rows.alerts ?? 0) + (s.rows.kpi_windows ?? 0);
      const lakeRows = Object.entries(s.rows).reduce((n, [table, rows]) => (table.startsWith('raw_') ? n : n + (rows ?? 0)), 0) - liveRows;
      const cpu = process.cpuUsage();
      const own = { cpuSeconds: (cpu.user + cpu.system) / 1e6, rssMb: process.memoryUsage.rss() / 2 ** 20 };
      const common = {
        parts: {
          sink: started(sink, 'stats()').process(),
          ...(liveEngine === undefined ? {} : { live: liveEngine.process() }),
          ...(warehouse === undefined ? {} : { warehouse: warehouse.process() }),
          ...(kafka?.pid === undefined ? {} : { kafka: pidFigures(kafka.pid) }),
        },
        loopDelayMs: loop?.read() ?? { p99: 0, max: 0 },
        sink: { consumed: s.consumed, buffered: s.buffered, flushes: s.flushes, commitErrors: s.commitErrors, writeErrors: s.writeErrors, droppedOnRebalance: s.droppedOnRebalance },
      };
      if (gatewayGroup !== undefined) {
        const gateways = gatewayGroup.figures();
        const sum = (key: 'devices' | 'connected' | 'published' | 'accepted' | 'deadLettered' | 'buffered' | 'forwarded') => gateways.reduce((n, x) => n + x[key], 0);
        return {
          devices: sum('devices'),
          connected: sum('connected'),
          published: sum('published'),
          accepted: sum('accepted'),
          deadLettered: sum('deadLettered'),
          buffered: sum('buffered'),
          forwarded: sum('forwarded'),
          lakeRows,
          lakeFiles: s.files,
          liveRows,
          warehouseObjects: warehouse?.stats().objects ?? 0,
          warehouseRows: warehouse?.stats().rows ?? 0,
          warehouseProcessedPartitions: warehouse?.stats().processedPartitions ?? 0,
          warehouseProcessedRows: warehouse?.stats().processedRows ?? 0,
          gateways,
          process: own,
          ...common,
        };
      }
      const f = started(fleet, 'stats()').stats();
      const g = started(gateway, 'stats()').stats();
      return {
        process: own,
        ...common,
        devices: f.devices,
        connected: f.connected,
        published: f.published + f.invalidPublished,
        accepted: g.accepted,
        deadLettered: g.deadLettered,
        buffered: g.bufferDepth,
        forwarded: g.forwarded,
        lakeRows,
        lakeFiles: s.files,
        liveRows,
        warehouseObjects: warehouse?.stats().objects ?? 0,
        warehouseRows: warehouse?.stats().rows ?? 0,
        warehouseProcessedPartitions: warehouse?.stats().processedPartitions ?? 0,
        warehouseProcessedRows: warehouse?.stats().processedRows ?? 0,
      };
    },
  };
}
