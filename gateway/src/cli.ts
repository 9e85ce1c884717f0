#!/usr/bin/env -S node --max-semi-space-size=2
// Process entry: `gateway start|status|devices`. Each command parses its own flags and returns an exit code.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { runDevicesCommand } from './cli-devices.ts';
import { loadGatewayConfig, statusUrlFromConfig } from './config.ts';
import { createGateway, defaultLog } from './gateway.ts';
import { fetchGatewayStatus, formatStatus } from './http.ts';

const USAGE = `usage: gateway <command> [options]
  start     run the gateway (the default command)
  status    ask a running gateway how it is (exit 0 healthy, 1 unhealthy, 3 unreachable)
  devices   manage the device registry (gateway devices --help)

gateway start [options]            flags override the config file, which overrides the defaults
  --config FILE         JSON options file (same fields as the gateway options; unknown keys are errors)
  --id ID               gateway id (default: $GATEWAY_ID, the file, else the host name)
  --host HOST           MQTT listen address (default 0.0.0.0)
  --port PORT           MQTT listen port (default 1883)
  --buffer FILE         SQLite buffer file (default ./gateway-buffer.db)
  --durability MODE     power-loss (fsync every group commit, default) or process-crash
  --brokers LIST        Kafka bootstrap servers host:port,… (default: $KAFKA_BROKERS)
  --health-interval S   seconds between health reports (default 60, 0 = off)
  --http ADDR           status and metrics listener: [HOST:]PORT or "off" (default 127.0.0.1:9180)

gateway status [--config FILE | --url http://HOST:PORT] [--timeout S] [--json]`;

type Command = (argv: readonly string[]) => number | Promise<number>;

// One line per command; each module owns its flags and usage.
const COMMANDS: Record<string, Command> = {
  start: startCommand,
  status: statusCommand,
  devices: runDevicesCommand,
};

class UsageError extends Error {}

function number(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got "${value}"`);
  return n;
}

function parse<const O extends ParseArgsOptionsConfig>(argv: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function httpOverride(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value === 'off') return { enabled: false };
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(value);
  if (!m) throw new UsageError(`--http must be [HOST:]PORT or "off", got "${value}"`);
  return { enabled: true, port: Number(m[2]), ...(m[1] === undefined ? {} : { host: m[1].replace(/^\[(.*)\]$/, '$1') }) };
}

async function startCommand(argv: readonly string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    id: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    buffer: { type: 'string' },
    durability: { type: 'string' },
    brokers: { type: 'string' },
    'health-interval': { type: 'string' },
    http: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const healthSeconds = number('health-interval', values['health-interval']);
  const config = loadGatewayConfig({
    ...(values.config === undefined ? {} : { file: values.config }),
    env: process.env,
    overrides: {
      gatewayId: values.id,
      mqtt: { host: values.host, port: number('port', values.port) },
      buffer: { path: values.buffer, durability: values.durability },
      kafka: { brokers: values.brokers?.split(',').map((b) => b.trim()) },
      healthIntervalMs: healthSeconds === undefined ? undefined : Math.round(healthSeconds * 1000),
      http: httpOverride(values.http),
    },
  });

  const gateway = createGateway(config, defaultLog);
  // First signal: orderly close with its deadline. Second signal: the operator means it; leave now.
  const closed = new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        defaultLog('warn', 'second signal; exiting without finishing shutdown', { signal });
        process.exit(130);
      }
      signalled = true;
      defaultLog('info', 'shutting down', { signal });
      gateway.close().then(
        () => resolve(0),
        (err: Error) => {
          defaultLog('error', 'shutdown failed', { error: err.message });
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  try {
    await gateway.start();
  } catch (err) {
    defaultLog('error', 'gateway failed to start', { error: (err as Error).message });
    await gateway.close().catch(() => undefined);
    return 1;
  }
  return closed;
}

async function statusCommand(argv: readonly string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    url: { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.config !== undefined && values.url !== undefined) throw new UsageError('give --config or --url, not both');
  let url = values.url;
  if (url === undefined) {
    const config = loadGatewayConfig({ env: process.env, ...(values.config === undefined ? {} : { file: values.config }) });
    if (!config.http.enabled) throw new UsageError('the status listener is off in this config (http.enabled: false); give --url');
    url = statusUrlFromConfig(config);
  }
  const timeoutMs = Math.round((number('timeout', values.timeout) ?? 5) * 1000);
  let report;
  try {
    report = await fetchGatewayStatus(url, timeoutMs);
  } catch (err) {
    process.stderr.write(`gateway status: ${(err as Error).message}\n`);
    return 3;
  }
  process.stdout.write(values.json ? `${JSON.stringify(report.health, null, 2)}\n` : formatStatus(report));
  return report.health.healthy ? 0 : 1;
}

async function main(argv: readonly string[]): Promise<number> {
  const first = argv[0];
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // `gateway --port 1883 …` still means start, as before commands existed.
  const name = first === undefined || first.startsWith('-') ? 'start' : first;
  const command = COMMANDS[name];
  const rest = first === undefined || first.startsWith('-') ? argv : argv.slice(1);
  try {
    if (!command) throw new UsageError(`unknown command "${name}"`);
    return await command(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`gateway: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`gateway: ${(err as Error).message}\n`);
    return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`gateway: ${err.message}\n`);
    process.exit(1);
  },
);
