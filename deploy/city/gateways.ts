// A city of several gateways on one machine: each gateway a process of its own, run by the gateway's
// CLI (`gateway start`) with its own id, MQTT port, status listener and SQLite buffer, and each with its
// share of the simulated devices in a process of its own (fleet-child.ts), so the load spreads over the
// machine's cores as it would over a neighbourhood's boards. Figures per gateway come from its /healthz
// and, per process, from /proc (CPU time, RSS).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor, type KafkaTopicSet, type Log } from '@city/protocol';
import { spreadDevices, type SimKind } from '@city/device-sim';
import { GATEWAY_NODE_FLAGS, readBufferFile } from '@city/gateway';
import { cityErrors } from './errors.ts';
import { exitedOf, freePort, portIsFree, procFigures, stopChild, type ProcessFigures } from './processes.ts';

export type { ProcessFigures };

/** The gateway's CLI entry, found through the package so it is the installed gateway that runs. */
const GATEWAY_CLI = fileURLToPath(new URL('cli.ts', import.meta.resolve('@city/gateway')));
const FLEET_CHILD = join(import.meta.dirname, 'fleet-child.ts');
/** As the service unit sets it (deploy/gateway-package/files/city-gateway.service). */
const GATEWAY_ENV = { MALLOC_ARENA_MAX: '2' };
const POLL_EVERY_MS = 1_000;

export interface CityGatewayFigures {
  id: string;
  port: number;
  /** The gateway's status listener (/healthz, /metrics). */
  statusUrl: string;
  devices: number;
  connected: number;
  /** Publishes of this gateway's devices, valid and invalid, and those of them acknowledged. */
  published: number;
  acknowledged: number;
  accepted: number;
  deadLettered: number;
  buffered: number;
  forwarded: number;
  oldestUnsentAgeMs: number;
  kafka: string;
  gateway: ProcessFigures;
  fleet: ProcessFigures;
}

export interface CityGatewaysOptions {
  count: number;
  /** Total devices, split evenly over the gateways, each share spread over the kinds like the default fleet. */
  devices: number;
  dir: string;
  brokers: readonly string[];
  /** Topics of the city when not the standard ones. */
  topics?: KafkaTopicSet;
  /** First gateway's MQTT port, the next ones counting up (a free one where taken; 0: always free ones). */
  firstPort: number;
  seed: number;
  rate: number;
  invalidRate: number;
  log: Log;
}

export interface CityGateways {
  /** Starts the gateways, then their devices' processes (which go on connecting); a part that fails stops what started. */
  start(): Promise<void>;
  /** Devices stop first (PUBACKs awaited), then each gateway closes in order (it forwards what it holds). */
  close(): Promise<void>;
  figures(): CityGatewayFigures[];
}

/** `total` split over `parts` as evenly as whole numbers allow, the first ones taking the remainder. */
export function splitEvenly(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

function accepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

interface FleetLine {
  final: boolean;
  devices: number;
  connected: number;
  published: number;
  acknowledged: number;
  invalidPublished: number;
  invalidAcknowledged: number;
  errors: number;
  lastError?: string;
}

interface Member {
  id: string;
  port: number;
  httpPort: number;
  devices: Record<SimKind, number>;
  deviceCount: number;
  gateway?: ChildProcess;
  fleet?: ChildProcess;
  fleetLine?: FleetLine;
  /** Its stdout closed: every stats line has been read. */
  fleetRead?: Promise<unknown>;
  health?: { stats: Record<string, unknown>; kafka: string };
  /** Records left in the buffer file once the gateway has exited. */
  leftInBuffer?: number;
}

export function createCityGateways(options: CityGatewaysOptions): CityGateways {
  const { log } = options;
  const logDir = join(options.dir, 'logs');
  const shares = splitEvenly(options.devices, options.count);
  const members: Member[] = shares.map((n, i) => ({
    id: `gw-city-${String(i + 1).padStart(2, '0')}`,
    port: 0,
    httpPort: 0,
    devices: spreadDevices(n),
    deviceCount: n,
  }));
  const bufferOf = (m: Member) => join(options.dir, `${m.id}-buffer.db`);
  let poller: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  // A city that exits without close() (an uncaught error) still asks its gateways to close in order.
  const onExit = () => {
    for (const m of members) for (const c of [m.fleet, m.gateway]) if (c !== undefined && !exitedOf(c)) c.kill('SIGTERM');
  };

  const poll = async (m: Member) => {
    if (m.gateway === undefined || exitedOf(m.gateway)) return;
    try {
      const res = await fetch(`http://127.0.0.1:${m.httpPort}/healthz`, { signal: AbortSignal.timeout(2_000) });
      const body = (await res.json()) as { stats: Record<string, unknown>; kafka: string };
      m.health = { stats: body.stats, kafka: body.kafka };
    } catch {
      // A busy gateway answers late: the last figures stand until the next poll.
    }
  };
  const pollAll = () => Promise.all(members.map(poll));

  const startGateway = async (m: Member, i: number) => {
    const wanted = options.firstPort === 0 ? 0 : options.firstPort + i;
    m.port = wanted !== 0 && (await portIsFree(wanted)) ? wanted : await freePort();
    m.httpPort = await freePort();
    const config = join(options.dir, `${m.id}.json`);
    // What the in-process city gateway has beyond the CLI's defaults: the city's topics, health every 10 s,
    // any client (the simulators carry no credentials).
    writeFileSync(config, `${JSON.stringify({ ...(options.topics === undefined ? {} : { topics: options.topics }), healthIntervalMs: 10_000 }, null, 2)}\n`);
    const out = openSync(join(logDir, `${m.id}.log`), 'a');
    const args = [
      ...GATEWAY_NODE_FLAGS,
      GATEWAY_CLI,
      'start',
      '--config', config,
      '--id', m.id,
      '--host', '127.0.0.1',
      '--port', String(m.port),
      '--buffer', bufferOf(m),
      '--brokers', options.brokers.join(','),
      '--auth', 'none',
      '--http', `127.0.0.1:${m.httpPort}`,
    ];
    // Its own process group: a Ctrl-C in the terminal reaches only the city, which closes the parts in order.
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...GATEWAY_ENV } });
    closeSync(out);
    m.gateway = child;
    child.once('exit', (code, signal) => {
      if (closing === undefined) log('error', 'a city gateway exited', { gatewayId: m.id, code, signal, log: join(logDir, `${m.id}.log`) });
    });
    await waitFor(
      async () => {
        if (exitedOf(child)) throw cityErrors.create('CITY_GATEWAY_FAILED', `${m.id} exited with ${child.exitCode ?? child.signalCode} before listening; see ${join(logDir, `${m.id}.log`)}`);
        return accepts(m.port);
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `${m.id} listening on ${m.port}` },
    );
  };

  const startFleet = async (m: Member, i: number) => {
    const fleetOptions = {
      url: `mqtt://127.0.0.1:${m.port}`,
      seed: options.seed + i,
      ratePerDevice: options.rate,
      devices: m.devices,
      invalid: { rate: options.invalidRate },
      // Device ids unique across the city: sim1-vehicle-0 on the first gateway, sim2-vehicle-0 on the second.
      deviceIdPrefix: `sim${i + 1}`,
      connectTimeoutMs: 120_000,
    };
    const err = openSync(join(logDir, `${m.id}-devices.log`), 'a');
    const child = spawn(process.execPath, [FLEET_CHILD, JSON.stringify(fleetOptions)], { detached: true, stdio: ['ignore', 'pipe', err, 'ipc'] });
    closeSync(err);
    m.fleet = child;
    m.fleetRead = once(child.stdout!, 'close');
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        m.fleetLine = JSON.parse(line) as FleetLine;
      } catch {
        // Not a stats line.
      }
    });
    await waitFor(
      () => {
        if (exitedOf(child)) throw cityErrors.create('CITY_GATEWAY_FAILED', `the devices of ${m.id} exited with ${child.exitCode ?? child.signalCode}; see ${join(logDir, `${m.id}-devices.log`)}`);
        // Up and connecting: thousands of devices take a while, and the counts show them arrive.
        return m.fleetLine !== undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `the devices of ${m.id} starting` },
    );
  };

  return {
    async start() {
      mkdirSync(logDir, { recursive: true });
      process.on('exit', onExit);
      await Promise.all(members.map(startGateway));
      await pollAll();
      poller = setInterval(() => void pollAll(), POLL_EVERY_MS);
      poller.unref();
      await Promise.all(members.map(startFleet));
    },
    close() {
      closing ??= (async () => {
        await Promise.all(members.map(async (m) => {
          await stopChild(m.fleet);
          await m.fleetRead;
        }));
        // No device is left: these are the gateways' final intake counts.
        clearInterval(poller);
        await pollAll();
        await Promise.all(members.map((m) => stopChild(m.gateway)));
        for (const m of members) {
          try {
            m.leftInBuffer = readBufferFile(bufferOf(m)).length;
          } catch (err) {
            log('warn', 'could not read a city gateway buffer after it closed', { gatewayId: m.id, error: (err as Error).message });
          }
        }
        process.off('exit', onExit);
      })();
      return closing;
    },
    figures: () =>
      members.map((m) => {
        const s = m.health?.stats ?? {};
        const n = (key: string) => (typeof s[key] === 'number' ? s[key] : 0);
        const f = m.fleetLine;
        return {
          id: m.id,
          port: m.port,
          statusUrl: `http://127.0.0.1:${m.httpPort}`,
          devices: m.deviceCount,
          connected: f?.connected ?? 0,
          published: (f?.published ?? 0) + (f?.invalidPublished ?? 0),
          acknowledged: (f?.acknowledged ?? 0) + (f?.invalidAcknowledged ?? 0),
          accepted: n('accepted'),
          deadLettered: n('deadLettered'),
          buffered: m.leftInBuffer ?? n('bufferDepth'),
          forwarded: n('forwarded'),
          oldestUnsentAgeMs: n('oldestUnsentAgeMs'),
          kafka: m.health?.kafka ?? 'unknown',
          gateway: procFigures(m.gateway),
          fleet: procFigures(m.fleet),
        };
      }),
  };
}
