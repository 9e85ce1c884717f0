// `gateway status`: asks a running gateway's /healthz and /metrics how it is.
import { parseCommandLine } from '@city/protocol';
import { gatewayErrors } from '../errors.ts';
import { fetchGatewayStatus, formatStatus } from '../health/index.ts';
import { loadGatewayConfig, statusUrlFromConfig } from './config.ts';
import { numberFlag } from './start.ts';

export const STATUS_USAGE = `usage: gateway status [--config FILE | --url http://HOST:PORT] [--timeout S] [--json]
  --config FILE         find the gateway through its config file (its http listener)
  --url URL             or give the status listener's address
  --timeout S           seconds to wait for an answer (default 5)
  --json                print /healthz as JSON instead of a summary
exit code: 0 healthy, 1 unhealthy, 3 unreachable, 2 bad usage or config`;

/** Exit code when the gateway does not answer. */
export const STATUS_UNREACHABLE = 3;

const usageError = (detail: string) => gatewayErrors.create('GW_USAGE', detail);

export async function statusCommand(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(
    argv,
    { config: { type: 'string' }, url: { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean' } },
    { usage: STATUS_USAGE, usageError },
  );
  if (!args) return 0;
  const { values } = args;
  if (values.config !== undefined && values.url !== undefined) throw usageError('give --config or --url, not both');
  let url = values.url;
  if (url === undefined) {
    const config = loadGatewayConfig({ env: process.env, ...(values.config === undefined ? {} : { file: values.config }) });
    if (!config.http.enabled) throw usageError('the status listener is off in this config (http.enabled: false); give --url');
    url = statusUrlFromConfig(config);
  }
  const timeoutMs = Math.round((numberFlag('timeout', values.timeout) ?? 5) * 1000);
  let report;
  try {
    report = await fetchGatewayStatus(url, timeoutMs);
  } catch (err) {
    if (!gatewayErrors.is(err, 'GW_STATUS_UNREACHABLE')) throw err;
    process.stderr.write(`gateway status: ${err.code}: ${err.message}\n`);
    return STATUS_UNREACHABLE;
  }
  process.stdout.write(values.json ? `${JSON.stringify(report.health, null, 2)}\n` : formatStatus(report));
  return report.health.healthy ? 0 : 1;
}
