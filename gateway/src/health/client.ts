// The client side of the status listener: what `gateway status` fetches and prints.
import { gatewayErrors } from '../errors.ts';
import { isNumber, parseMetrics, type MetricSample } from './metrics.ts';
import type { HealthzBody } from './status.ts';

export interface GatewayStatusReport {
  url: string;
  httpStatus: number;
  health: HealthzBody;
  metrics: MetricSample[];
}

/** Fetches /healthz and /metrics; throws GW_STATUS_UNREACHABLE when the gateway does not answer properly. */
export async function fetchGatewayStatus(baseUrl: string, timeoutMs = 5000): Promise<GatewayStatusReport> {
  const base = baseUrl.replace(/\/+$/, '');
  const get = async (path: string): Promise<Response> => {
    try {
      return await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      const cause = (err as Error & { cause?: Error }).cause;
      throw gatewayErrors.create('GW_STATUS_UNREACHABLE', `${base}${path}: ${cause?.message ?? (err as Error).message}`, err);
    }
  };
  const [healthRes, metricsRes] = await Promise.all([get('/healthz'), get('/metrics')]);
  let health: HealthzBody;
  try {
    health = (await healthRes.json()) as HealthzBody;
  } catch (err) {
    throw gatewayErrors.create('GW_STATUS_UNREACHABLE', `${base}/healthz answered ${healthRes.status} without a JSON body`, err);
  }
  if (!metricsRes.ok) throw gatewayErrors.create('GW_STATUS_UNREACHABLE', `${base}/metrics answered ${metricsRes.status}`);
  return { url: base, httpStatus: healthRes.status, health, metrics: parseMetrics(await metricsRes.text()) };
}

const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;

function kafkaLine(h: HealthzBody): string {
  switch (h.kafka) {
    case 'reachable':
      return 'reachable';
    case 'unreachable':
      return `UNREACHABLE (buffering)${h.kafkaError ? `: ${h.kafkaError}` : ''}`;
    case 'topic-missing':
      return `TOPIC MISSING: ${(h.kafkaTopicsMissing ?? []).join(', ')} (buffering until the topics are created)`;
    default:
      return 'not contacted yet';
  }
}

export function formatStatus(report: GatewayStatusReport): string {
  const { health: h, metrics } = report;
  const sum = (name: string): number => metrics.filter((m) => m.name === name).reduce((a, m) => a + m.value, 0);
  const num = (key: string): number => (isNumber(h.stats[key]) ? h.stats[key] : 0);
  const lines = [
    `gateway ${h.gatewayId} at ${report.url}: ${h.healthy ? 'HEALTHY' : 'UNHEALTHY'} (HTTP ${report.httpStatus}, state ${h.state})`,
  ];
  for (const reason of h.reasons) lines.push(`  ! ${reason}`);
  lines.push(
    `  uptime      ${Math.round(h.uptime)} s; Kafka ${kafkaLine(h)}`,
    `  devices     ${num('connectedDevices')} connected`,
    `  buffer      ${num('bufferDepth')} records, ${mib(num('bufferBytes'))}, oldest unsent ${(num('oldestUnsentAgeMs') / 1000).toFixed(1)} s`,
    `  traffic     in ${h.inRate.toFixed(1)}/s, out ${h.outRate.toFixed(1)}/s; totals: received ${sum('city_gateway_received_total')}, accepted ${sum('city_gateway_accepted_total')}, dead-lettered ${sum('city_gateway_dead_lettered_total')}, forwarded ${sum('city_gateway_forwarded_total')}, commit failures ${sum('city_gateway_commit_failures_total')}`,
  );
  // Only what happened: a row of zeros hides the one figure that matters.
  const counted = (prefix: string): string => {
    const hits = metrics.filter((m) => m.name.startsWith(prefix) && m.name.endsWith('_total') && m.value > 0);
    if (hits.length === 0) return 'none';
    return hits.map((m) => `${m.name.slice(prefix.length, -'_total'.length)}${Object.keys(m.labels).length ? `{${Object.values(m.labels).join(',')}}` : ''} ${m.value}`).join(', ');
  };
  if (h.clock !== undefined) lines.push(`  clock       ${h.clock.state === 'synchronized' ? 'synchronized' : `${h.clock.state.toUpperCase()} (receive stamps say so)`}`);
  lines.push(`  buffer loss ${counted('city_gateway_buffer_')}`);
  if (metrics.some((m) => m.name === 'city_gateway_denied_total')) lines.push(`  refused     ${counted('city_gateway_denied_')}`);
  const s = h.system;
  if (s) {
    lines.push(
      `  system      cpu ${(s.cpuLoad * 100).toFixed(0)}%, memory ${mib(s.memoryUsed)} of ${mib(s.memoryTotal)}, disk free ${mib(s.diskFree)}, temperature ${s.temperature === undefined ? 'n/a (no sensor)' : `${s.temperature.toFixed(1)} °C`} (sampled ${s.ageSeconds.toFixed(0)} s ago)`,
    );
  } else {
    lines.push('  system      not sampled yet');
  }
  return `${lines.join('\n')}\n`;
}
