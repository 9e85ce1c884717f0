// The operations dashboard as one component: Kafka (a consumer group of its own) → bounded city state →
// deltas at a capped rate on one server-sent-events stream per page, and the built page over node:http.
// createDashboard() validates its options and starts nothing; start() and close() are explicit.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createLifecycle } from '@city/protocol';
import { cloudErrors, errorMessage, lifecycleErrors } from '../errors.ts';
import { createDashboardConsumer } from './consumer.ts';
import { latestWarehouseLoad, newestLakeFile, warehouseFreshness } from './freshness.ts';
import { createIntake } from './intake.ts';
import type { HealthView } from './messages.ts';
import { resolveDashboardOptions, type DashboardConfig, type DashboardOptions } from './options.ts';
import { createHandler } from './server.ts';
import { createCityState } from './state.ts';
import { createEventStream, type StreamStats } from './stream.ts';

export interface DashboardStats {
  consumed: Record<string, number>;
  invalid: Record<string, number>;
  vehicles: number;
  /** Topics the dashboard would read but the cluster lacks (start the live engine, or create them). */
  missingTopics: string[];
  stream: StreamStats;
}

export interface Dashboard {
  readonly config: Readonly<DashboardConfig>;
  start(): Promise<void>;
  close(): Promise<void>;
  /** The page's address (after start). */
  url(): string;
  port(): number;
  stats(): DashboardStats;
  /** Cuts every page's stream; browsers reconnect with Last-Event-ID and resume. */
  dropClients(): number;
}

export function createDashboard(options: DashboardOptions): Dashboard {
  const { config, log, warehouse } = resolveDashboardOptions(options);
  const life = createLifecycle({ name: 'dashboard', deadlineMs: config.closeTimeoutMs, errors: lifecycleErrors });
  const state = createCityState(config);
  const run = randomBytes(4).toString('hex');
  const consumed: Record<string, number> = {};
  const invalid: Record<string, number> = {};
  let missingTopics: string[] = [];
  let lakeFreshnessS: number | null = null;
  let lakeNewest: number | undefined;
  let warehouseLoad: number | undefined;
  let warehouseError: string | undefined;
  let sinkLag: Record<string, number> = {};
  const rate: Record<string, number> = {};
  let lastCounts: Record<string, number> = {};
  let lastRateAt = Date.now();
  let server: Server | undefined;

  const intake = createIntake(config.topics, state);
  const consumer = createDashboardConsumer(
    config,
    (topic, value) => {
      consumed[topic] = (consumed[topic] ?? 0) + 1;
      if (!intake(topic, value)) invalid[topic] = (invalid[topic] ?? 0) + 1;
    },
    log,
  );

  const health = (): HealthView => ({
    now: Date.now(),
    lag: consumer.lag(),
    sinkGroup: config.sinkGroup,
    sinkLag: { ...sinkLag },
    consumed: { ...consumed },
    rate: { ...rate },
    invalid: { ...invalid },
    lakeFreshnessS,
    warehouseConfigured: warehouse !== undefined,
    warehouseFreshnessS: warehouseFreshness(Date.now(), warehouseLoad, lakeNewest).freshnessS,
    warehouseBehindLakeS: warehouseFreshness(Date.now(), warehouseLoad, lakeNewest).behindLakeS,
    ...(warehouseError === undefined ? {} : { warehouseError }),
    missing: [...missingTopics],
    vehicles: state.vehicleCount,
    clients: stream.stats().clients,
  });
  const stream = createEventStream({ ...config, run }, (seq) => ({ type: 'snapshot', seq, state: state.snapshot(health()) }));

  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw cloudErrors.create('CLD_CLOSED', `dashboard is not started: ${what}`);
    return value;
  };

  const port = () => (started(server, 'port()').address() as AddressInfo).port;

  return {
    config,
    start: () =>
      life.start(async () => {
        if (!existsSync(join(config.pageDir, 'index.html'))) {
          throw cloudErrors.create('CLD_DASHBOARD_PAGE', `no built page in ${config.pageDir} (build it with npm run dashboard:build)`);
        }
        const http = createServer(createHandler(config.pageDir, { events: (req, res) => stream.attach(req, res), health: () => ({ ...health(), stream: stream.stats() }) }));
        // Long-lived streams: no request timeout on this server (the stream's heartbeats keep idle links up).
        http.requestTimeout = 0;
        http.keepAliveTimeout = 5_000;
        await new Promise<void>((resolve, reject) => {
          http.once('error', (err) => reject(cloudErrors.create('CLD_DASHBOARD_LISTEN', `${config.host}:${config.port}: ${errorMessage(err)}`, err)));
          http.listen(config.port, config.host, () => resolve());
        });
        server = http;
        life.defer('http server', () => new Promise<void>((resolve) => http.close(() => resolve())), () => http.closeAllConnections());
        life.defer('event stream', () => stream.close());

        try {
          missingTopics = await consumer.start();
        } catch (err) {
          await consumer.disconnect().catch(() => undefined);
          throw cloudErrors.create('CLD_KAFKA_START', errorMessage(err), err);
        }
        life.defer('kafka consumer', () => consumer.disconnect());
        if (missingTopics.length > 0) log('info', 'dashboard: topics missing, not read (shown on the health panel)', { topics: missingTopics });

        const deltas = setInterval(() => {
          const now = Date.now();
          state.expire(now);
          let h: HealthView | undefined;
          if (now - lastRateAt >= config.healthIntervalMs) {
            for (const [topic, n] of Object.entries(consumed)) rate[topic] = Math.round(((n - (lastCounts[topic] ?? 0)) * 1000) / (now - lastRateAt));
            lastCounts = { ...consumed };
            lastRateAt = now;
            h = health();
          }
          // Nothing changed and no health due: no message (the ring keeps only what carries news).
          const delta = state.takeDelta(stream.stats().seq + 1, h);
          if (delta !== undefined) stream.publish(() => delta);
        }, config.deltaIntervalMs);
        life.defer('delta timer', () => clearInterval(deltas));

        let polling = false;
        const pollLag = () => {
          if (polling) return;
          polling = true;
          consumer
            .groupLag(config.sinkGroup)
            .then((lag) => (sinkLag = lag))
            .catch((err: unknown) => log('debug', 'dashboard: sink lag not available', { error: errorMessage(err) }))
            .finally(() => (polling = false));
        };
        pollLag();
        const lagTimer = setInterval(pollLag, Math.max(config.healthIntervalMs, 5_000));
        lagTimer.unref();
        life.defer('sink lag', () => clearInterval(lagTimer));

        const lakeDir = config.lakeDir;
        if (lakeDir !== undefined) {
          let scanning = false;
          const scan = () => {
            if (scanning) return;
            scanning = true;
            newestLakeFile(lakeDir)
              .then((t) => {
                lakeNewest = t;
                lakeFreshnessS = t === undefined ? null : Math.max(0, Math.round((Date.now() - t) / 1000));
              })
              .catch(() => undefined)
              .finally(() => (scanning = false));
          };
          scan();
          const lake = setInterval(scan, Math.max(config.healthIntervalMs, 5_000));
          lake.unref();
          life.defer('lake freshness', () => clearInterval(lake));
        }
        if (warehouse !== undefined) {
          let asking = false;
          const ask = () => {
            const w = warehouse();
            if (asking || w === undefined) return;
            asking = true;
            latestWarehouseLoad(w)
              .then((t) => {
                warehouseLoad = t;
                warehouseError = undefined;
              })
              .catch((err: unknown) => (warehouseError = errorMessage(err)))
              .finally(() => (asking = false));
          };
          ask();
          const timer = setInterval(ask, Math.max(config.healthIntervalMs, 5_000));
          timer.unref();
          life.defer('warehouse freshness', () => clearInterval(timer));
        }
        log('info', 'dashboard listening', { url: `http://${config.host}:${(http.address() as AddressInfo).port}/` });
      }),
    close: () => life.close(),
    port,
    url: () => `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port()}/`,
    stats: () => ({ consumed: { ...consumed }, invalid: { ...invalid }, vehicles: state.vehicleCount, missingTopics: [...missingTopics], stream: stream.stats() }),
    dropClients: () => stream.dropClients(),
  };
}
