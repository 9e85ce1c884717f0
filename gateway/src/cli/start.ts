// `gateway start`: runs one gateway from the config file, the environment and flags until a signal.
import { closeOnSignals, jsonLog, parseCommandLine } from '@city/protocol';
import { gatewayErrors } from '../errors.ts';
import { createGateway, type Gateway } from '../gateway.ts';
import { createWatchdog, type WatchdogProbe } from '../health/index.ts';
import { loadGatewayConfig } from './config.ts';

export const START_USAGE = `usage: gateway start [options]      flags override the config file, which overrides the defaults
  --config FILE         JSON options file (same fields as the gateway options; unknown keys are errors)
  --id ID               gateway id (default: $GATEWAY_ID, the file, else the host name)
  --host HOST           MQTT listen address (default 0.0.0.0)
  --port PORT           MQTT listen port (default 1883)
  --buffer FILE         SQLite buffer file (default ./gateway-buffer.db)
  --durability MODE     power-loss (fsync every group commit, default) or process-crash
  --brokers LIST        Kafka bootstrap servers host:port,… (default: $KAFKA_BROKERS)
  --compression C       uplink codec: none (default), gzip, lz4 or zstd
  --kafka-ca FILE       TLS to Kafka, trusting the CAs in FILE (PEM); with --kafka-cert/--kafka-key FILE, mutual TLS
  --kafka-sasl MECH     plain, scram-sha-256, scram-sha-512 or oauthbearer, with --kafka-user NAME and
                        --kafka-password-file FILE (a password is never a flag; the file is read again on
                        every connection) or, for oauthbearer, --kafka-token-file FILE
  --auth MODE           registry (only registered devices, default) or none (any client: labs only)
  --health-interval S   seconds between health reports (default 60, 0 = off)
  --http ADDR           status and metrics listener: [HOST:]PORT or "off" (default 127.0.0.1:9180)`;

const usageError = (detail: string) => gatewayErrors.create('GW_USAGE', detail);

/** A flag's number, or a usage error naming the flag. */
export function numberFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw usageError(`--${flag} must be a number, got "${value}"`);
  return n;
}

function httpOverride(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value === 'off') return { enabled: false };
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(value);
  if (!m) throw usageError(`--http must be [HOST:]PORT or "off", got "${value}"`);
  return { enabled: true, port: Number(m[2]), ...(m[1] === undefined ? {} : { host: m[1].replace(/^\[(.*)\]$/, '$1') }) };
}

function authOverride(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value !== 'none' && value !== 'registry') throw usageError(`--auth must be "registry" or "none", got "${value}"`);
  return { mode: value };
}

/** What the systemd watchdog checks before each WATCHDOG=1 (see health/watchdog.ts). */
function watchdogProbe(gateway: Gateway): WatchdogProbe {
  return {
    problem() {
      const s = gateway.status();
      if (s.state !== 'running') return `gateway is ${s.state}`;
      return s.bufferWritable ? undefined : `buffer not writable: ${s.bufferError ?? 'unknown error'}`;
    },
    intake: () => ({ host: gateway.config.mqtt.host, port: gateway.port() }),
    status() {
      const s = gateway.status();
      return `serving ${s.stats.connectedDevices} device(s); buffer ${s.stats.bufferDepth} record(s); Kafka ${s.kafka}`;
    },
  };
}

/** The uplink's TLS and SASL from flags: only where secrets are (files), never a secret itself. */
function securityOverride(values: Record<string, string | boolean | undefined>): Record<string, unknown> | undefined {
  const text = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const tls = { caFile: text('kafka-ca'), certFile: text('kafka-cert'), keyFile: text('kafka-key') };
  const sasl = { mechanism: text('kafka-sasl'), username: text('kafka-user'), passwordFile: text('kafka-password-file'), tokenFile: text('kafka-token-file') };
  const some = (o: Record<string, string | undefined>) => Object.values(o).some((v) => v !== undefined);
  if (some(sasl) && sasl.mechanism === undefined) throw usageError('--kafka-user, --kafka-password-file and --kafka-token-file need --kafka-sasl MECH');
  if (!some(tls) && !some(sasl)) return undefined;
  return { ...(some(tls) ? { tls } : {}), ...(some(sasl) ? { sasl } : {}) };
}

export async function startCommand(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(
    argv,
    {
      config: { type: 'string' },
      id: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      buffer: { type: 'string' },
      durability: { type: 'string' },
      brokers: { type: 'string' },
      compression: { type: 'string' },
      'kafka-ca': { type: 'string' },
      'kafka-cert': { type: 'string' },
      'kafka-key': { type: 'string' },
      'kafka-sasl': { type: 'string' },
      'kafka-user': { type: 'string' },
      'kafka-password-file': { type: 'string' },
      'kafka-token-file': { type: 'string' },
      auth: { type: 'string' },
      'health-interval': { type: 'string' },
      http: { type: 'string' },
    },
    { usage: START_USAGE, usageError },
  );
  if (!args) return 0;
  const { values } = args;
  const healthSeconds = numberFlag('health-interval', values['health-interval']);
  const config = loadGatewayConfig({
    ...(values.config === undefined ? {} : { file: values.config }),
    env: process.env,
    overrides: {
      gatewayId: values.id,
      mqtt: { host: values.host, port: numberFlag('port', values.port) },
      buffer: { path: values.buffer, durability: values.durability },
      kafka: { brokers: values.brokers?.split(',').map((b) => b.trim()), compression: values.compression, security: securityOverride(values) },
      auth: authOverride(values.auth),
      healthIntervalMs: healthSeconds === undefined ? undefined : Math.round(healthSeconds * 1000),
      http: httpOverride(values.http),
    },
  });

  const log = jsonLog();
  const gateway = createGateway(config, log);
  // Under systemd (Type=notify): READY=1 once serving, WATCHDOG=1 only while healthy; else inert.
  const watchdog = createWatchdog({ probe: watchdogProbe(gateway), log });
  // First signal: orderly close with its deadline. Second signal: the operator means it; leave now.
  const closed = closeOnSignals(
    () => watchdog.close().then(() => gateway.close()),
    (message, fields) => log(fields !== undefined && 'error' in fields ? 'error' : 'info', message, fields),
  );
  // A start that fails has closed what it opened; the error (and its exit code) goes to runMain.
  await gateway.start();
  watchdog.start();
  return closed;
}
