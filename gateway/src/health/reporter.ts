// The gateway's own health, reported two ways: as a gateway_health event every intervalMs through the
// normal buffer → Kafka path, and as the rates /metrics serves (measured between system samples, so
// they do not depend on how often someone scrapes).
import { describeProblems, validateEvent, type GatewayHealth, type Location, type Log } from '@city/protocol';
import type { LaneCounts } from '../buffer/index.ts';
import { gatewayErrors } from '../errors.ts';
import { buildHealthEvent } from './event.ts';
import { createHealthMonitor, type HealthMonitor } from './monitor.ts';
import { createRateMeter } from './rates.ts';

/** The gateway's figures a health report carries (what gateway.stats() gives). */
export interface HealthFigures {
  accepted: number;
  forwarded: number;
  replayed: number;
  bufferCorrupt: number;
  bufferDepth: number;
  bufferBytes: number;
  oldestUnsentAgeMs: number | null;
  connectedDevices: number;
  evicted: LaneCounts;
  expired: LaneCounts;
  refused: LaneCounts;
}

export interface HealthReporterOptions {
  gatewayId: string;
  location?: Location | undefined;
  bufferPath: string;
  sampleIntervalMs: number;
  sampleTimeoutMs: number;
  /** Between two gateway_health events; 0 = never on its own. */
  intervalMs: number;
  log: Log;
  figures: () => HealthFigures;
  /** False while the gateway does not serve: a sample finishing during close must not read a closed buffer. */
  running: () => boolean;
  /** Whether the clock is synchronised now; undefined = unknown. */
  clockSynced?: () => boolean | undefined;
}

/** Where the events go once started: the buffer's health sequence, and the intake. */
export interface HealthSink {
  nextSequence: () => number;
  submit: (event: GatewayHealth, done: (err?: Error | null) => void) => void;
}

export interface HealthReporter {
  readonly monitor: HealthMonitor;
  /** Starts sampling and the report timer. */
  start(sink: HealthSink): void;
  /** Reports now; resolves once the event is durable in the buffer. */
  report(): Promise<GatewayHealth>;
  /** Accepted and forwarded per second over the last sampling interval. */
  rates(): { in: number; out: number };
  close(): void;
}

const sum = (counts: LaneCounts): number => counts.emergency + counts.deadletter + counts.telemetry;

export function createHealthReporter(options: HealthReporterOptions): HealthReporter {
  const eventRates = { in: createRateMeter(), out: createRateMeter() };
  const sampleRates = { in: createRateMeter(), out: createRateMeter() };
  let rates = { in: 0, out: 0 };
  let sink: HealthSink | undefined;
  let timer: NodeJS.Timeout | undefined;
  const monitor = createHealthMonitor({
    bufferPath: options.bufferPath,
    sampleIntervalMs: options.sampleIntervalMs,
    sampleTimeoutMs: options.sampleTimeoutMs,
    log: options.log,
    onSample: (sample) => {
      if (!options.running()) return;
      const s = options.figures();
      rates = { in: sampleRates.in.next(s.accepted, sample.at), out: sampleRates.out.next(s.forwarded, sample.at) };
    },
  });

  const report = async (): Promise<GatewayHealth> => {
    const to = sink;
    if (to === undefined) throw gatewayErrors.create('GW_NOT_STARTED', 'no health report before the gateway has started');
    // The system sample is cached; only the very first report waits for one.
    const sample = await monitor.current();
    if (!options.running()) throw gatewayErrors.create('GW_CLOSED', 'closed while sampling health');
    const now = Date.now();
    const s = options.figures();
    const event = buildHealthEvent({
      gatewayId: options.gatewayId,
      seq: to.nextSequence(),
      sample,
      bufferDepth: s.bufferDepth,
      bufferBytes: s.bufferBytes,
      oldestUnsentAgeMs: s.oldestUnsentAgeMs,
      connectedDevices: s.connectedDevices,
      inRate: eventRates.in.next(s.accepted, now),
      outRate: eventRates.out.next(s.forwarded, now),
      totals: { evicted: sum(s.evicted), expired: sum(s.expired), refused: sum(s.refused), replayed: s.replayed, bufferCorrupt: s.bufferCorrupt },
      ...(options.location === undefined ? {} : { location: options.location }),
      clockSynced: options.clockSynced?.(),
      now,
    });
    const checked = validateEvent(event);
    if (!checked.ok) throw gatewayErrors.create('GW_BUFFER_WRITE', `health event invalid: ${describeProblems(checked.problems)}`);
    return new Promise((resolve, reject) => to.submit(event, (err) => (err ? reject(err) : resolve(event))));
  };

  return {
    monitor,
    start(to) {
      sink = to;
      monitor.start();
      if (options.intervalMs > 0) {
        timer = setInterval(() => report().catch((err: Error) => options.log('warn', 'health report failed', { error: err.message })), options.intervalMs).unref();
      }
    },
    report,
    rates: () => rates,
    close() {
      clearInterval(timer);
      monitor.close();
    },
  };
}
