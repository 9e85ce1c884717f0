// The health monitor: system samples taken on their own timer and cached, so /healthz, /metrics and
// the health events never wait on sampling; a sample that fails or hangs is counted and the previous
// one is served.
import { dirname, resolve } from 'node:path';
import { withTimeout, type Log } from '@city/protocol';
import { gatewayErrors } from '../errors.ts';
import { systemProbe, type SystemProbe, type SystemSample } from './system.ts';

const message = (reason: unknown): string => (reason instanceof Error ? reason.message : String(reason));

export interface HealthMonitorOptions {
  bufferPath: string;
  sampleIntervalMs: number;
  sampleTimeoutMs: number;
  probe?: SystemProbe;
  log?: Log;
  /** Called after each successful sample (the gateway updates its scrape-independent rates here). */
  onSample?: (sample: SystemSample) => void;
}

export interface HealthMonitor {
  /** Samples now and then every interval (timer unref'd). */
  start(): void;
  /** Takes a sample; callers during one sampling share its promise. */
  sample(): Promise<SystemSample>;
  /** The last sample, if any: what /metrics and /healthz serve. */
  latest(): SystemSample | undefined;
  /** The last sample, or the first one once it is taken. */
  current(): Promise<SystemSample>;
  /** Samples that failed or timed out (the previous sample stays). */
  failures(): number;
  close(): void;
}

export function createHealthMonitor(options: HealthMonitorOptions): HealthMonitor {
  const probe = options.probe ?? systemProbe;
  const bufferDir = dirname(resolve(options.bufferPath));
  let last: SystemSample | undefined;
  let inFlight: Promise<SystemSample> | undefined;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const sample = (): Promise<SystemSample> => {
    if (inFlight) return inFlight;
    const started = performance.now();
    const timeout = () => gatewayErrors.create('GW_HEALTH_SAMPLE', `no reading within ${options.sampleTimeoutMs} ms`);
    inFlight = withTimeout(probe(bufferDir), options.sampleTimeoutMs, timeout)
      .then(
        (reading) => {
          last = { ...reading, at: Date.now(), durationMs: Math.round(performance.now() - started) };
          if (reading.errors.length > 0) options.log?.('warn', 'some health figures could not be read', { errors: reading.errors });
          options.onSample?.(last);
          return last;
        },
        (err: unknown) => {
          failures++;
          throw gatewayErrors.is(err, 'GW_HEALTH_SAMPLE') ? err : gatewayErrors.create('GW_HEALTH_SAMPLE', message(err), err);
        },
      )
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  const sampleQuietly = (): void => {
    sample().catch((err: Error) => options.log?.('warn', 'health sample failed; serving the previous one', { error: err.message }));
  };

  return {
    start() {
      if (closed || timer) return;
      sampleQuietly();
      timer = setInterval(sampleQuietly, options.sampleIntervalMs);
      timer.unref();
    },
    sample,
    latest: () => last,
    current: () => (last ? Promise.resolve(last) : sample()),
    failures: () => failures,
    close() {
      closed = true;
      clearInterval(timer);
      timer = undefined;
    },
  };
}

