// A gateway under test: created in-process on 127.0.0.1 port 0 with a buffer in a temp folder, closed
// after the current test; and reading the JSON log lines of a gateway run through its CLI.
import { join } from 'node:path';
import { createGateway, type Gateway, type GatewayOptions } from '@city/gateway';
import { silentLog, type Log } from '@city/protocol';
import type { RunningCli } from './cli.ts';
import { onTeardown, tempDir } from './teardown.ts';

/** Kafka that is not there: nothing listens on port 1, so every record stays in the buffer. */
export const KAFKA_AWAY = { brokers: ['127.0.0.1:1'], requestTimeoutMs: 200 };

export type TestGatewayOptions = Partial<GatewayOptions>;

/**
 * A gateway that is not started yet, with test defaults (id gw-test, MQTT on port 0, no health
 * reports, Kafka away, no drain on close) under `options` (top-level fields replace them whole).
 */
export function testGateway(options: TestGatewayOptions = {}, log: Log = silentLog): Gateway {
  const gateway = createGateway(
    {
      gatewayId: 'gw-test',
      mqtt: { host: '127.0.0.1', port: 0 },
      healthIntervalMs: 0,
      kafka: KAFKA_AWAY,
      drainOnCloseMs: 0,
      ...options,
      buffer: { path: join(tempDir('gw-test-'), 'buffer.db'), ...options.buffer },
    },
    log,
  );
  // A gateway the test closed itself (and checked how that went) is left alone.
  onTeardown(() => (gateway.status().state === 'closed' ? undefined : gateway.close()));
  return gateway;
}

/** testGateway(), started. */
export async function startTestGateway(options: TestGatewayOptions = {}, log: Log = silentLog): Promise<Gateway> {
  const gateway = testGateway(options, log);
  await gateway.start();
  return gateway;
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The first JSON log line of a gateway run through its CLI whose message is `message`, parsed. */
export async function gatewayLogLine(run: RunningCli, message: string, timeoutMs?: number): Promise<Record<string, unknown>> {
  const [line] = await run.waitForOutput(new RegExp(`^\\{.*"message":${escape(JSON.stringify(message))}.*\\}$`, 'm'), timeoutMs);
  return JSON.parse(line) as Record<string, unknown>;
}
