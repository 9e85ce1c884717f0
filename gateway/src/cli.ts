#!/usr/bin/env node
// Process entry: `gateway start [--config FILE] [flags]`. Signals close the gateway in order, with a deadline.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGateway, defaultLog } from './gateway.ts';
import type { GatewayOptions } from './options.ts';

const USAGE = `usage: gateway start [options]
  --config FILE         JSON options file (flags override it)
  --id ID               gateway id (default: $GATEWAY_ID or the host name)
  --host HOST           MQTT listen address (default 0.0.0.0)
  --port PORT           MQTT listen port (default 1883)
  --buffer FILE         SQLite buffer file (default ./gateway-buffer.db)
  --durability MODE     power-loss (fsync every group commit, default) or process-crash
  --brokers LIST        Kafka bootstrap servers host:port,… (default: $KAFKA_BROKERS)
  --health-interval S   seconds between health reports (default 60, 0 = off)`;

function fail(message: string): never {
  process.stderr.write(`gateway: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function main(): void {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        id: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        buffer: { type: 'string' },
        durability: { type: 'string' },
        brokers: { type: 'string' },
        'health-interval': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    fail((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const command = positionals[0] ?? 'start';
  if (command !== 'start' || positionals.length > 1) fail(`unknown command "${positionals.join(' ')}"`);

  let fileOptions: Partial<GatewayOptions> = {};
  if (values.config !== undefined) {
    try {
      fileOptions = JSON.parse(readFileSync(values.config, 'utf8')) as Partial<GatewayOptions>;
    } catch (err) {
      fail(`cannot read config ${values.config}: ${(err as Error).message}`);
    }
  }
  const number = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n)) fail(`--${flag} must be a number, got "${value}"`);
    return n;
  };
  const brokers = values.brokers ?? process.env.KAFKA_BROKERS;
  const healthSeconds = number('health-interval', values['health-interval']);
  const options: GatewayOptions = {
    ...fileOptions,
    gatewayId: values.id ?? fileOptions.gatewayId ?? process.env.GATEWAY_ID ?? process.env.HOSTNAME ?? 'gateway',
    mqtt: { ...fileOptions.mqtt, host: values.host ?? fileOptions.mqtt?.host, port: number('port', values.port) ?? fileOptions.mqtt?.port },
    buffer: {
      ...fileOptions.buffer,
      path: values.buffer ?? fileOptions.buffer?.path ?? 'gateway-buffer.db',
      durability: (values.durability ?? fileOptions.buffer?.durability) as GatewayOptions['buffer']['durability'],
    },
    kafka: { ...fileOptions.kafka, brokers: brokers?.split(',').map((b) => b.trim()) ?? fileOptions.kafka?.brokers },
    healthIntervalMs: healthSeconds === undefined ? fileOptions.healthIntervalMs : Math.round(healthSeconds * 1000),
  };

  let gateway;
  try {
    gateway = createGateway(options, defaultLog);
  } catch (err) {
    fail((err as Error).message);
  }
  const stop = (signal: string) => {
    defaultLog('info', 'shutting down', { signal });
    gateway.close().then(
      () => process.exit(0),
      (err: Error) => {
        defaultLog('error', 'shutdown failed', { error: err.message });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  gateway.start().catch((err: Error) => {
    defaultLog('error', 'gateway failed to start', { error: err.message });
    process.exit(1);
  });
}

main();
