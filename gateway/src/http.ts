// Status and metrics listener (/healthz JSON, /metrics Prometheus text 0.0.4) and the client side that
// `gateway status` uses. Serving reads only cached figures: a scrape never waits on systeminformation.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gatewayErrors } from './errors.ts';
import { judgeHealth, type HealthVerdict, type StatusSnapshot, type SystemSample } from './health.ts';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type MetricType = 'counter' | 'gauge' | 'untyped';
type Labels = Record<string, string>;

/** Collects samples per metric family so HELP and TYPE appear once, before the family's samples. */
class Exposition {
  private readonly families = new Map<string, { help: string; type: MetricType; samples: string[] }>();

  add(name: string, type: MetricType, help: string, value: number, labels: Labels = {}): void {
    let family = this.families.get(name);
    if (!family) {
      family = { help, type, samples: [] };
      this.families.set(name, family);
    }
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
    family.samples.push(`${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
  }

  render(): string {
    let out = '';
    for (const [name, f] of this.families) {
      out += `# HELP ${name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${f.type}\n${f.samples.join('\n')}\n`;
    }
    return out;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const snake = (name: string): string =>
  name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();

const P = 'city_gateway_';

const KNOWN_COUNTERS: Record<string, [string, string]> = {
  received: ['received_total', 'Publishes received from devices.'],
  accepted: ['accepted_total', 'Valid events committed to the buffer.'],
  deadLettered: ['dead_lettered_total', 'Invalid publishes committed to the buffer as dead letters.'],
  forwarded: ['forwarded_total', 'Records Kafka acknowledged.'],
  commitFailures: ['commit_failures_total', 'Group commits that failed (their devices were not acknowledged).'],
  groupCommits: ['group_commits_total', 'Group commits written (one transaction each; records per commit = accepted / commits).'],
  replayed: ['replayed_total', 'Of the forwarded records, those sent as backlog.'],
  bufferCorrupt: ['buffer_corrupt_total', 'Buffer files found corrupt at start and moved aside.'],
};
const KNOWN_GAUGES = new Set(['bufferDepth', 'bufferBytes', 'oldestUnsentAgeMs', 'connectedDevices']);
// Loss-policy counters other parts of the gateway add to stats(), exported whatever shape they take:
// the buffer's (evicted/expired/refused, by lane) and the intake's (denied, by reason).
const LOSS_COUNTER = /evict|expir|refus|discard/i;
const DENY_COUNTER = /denied|reject|drop/i;

const isNumber = (v: unknown): v is number => typeof v === 'number' && !Number.isNaN(v);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const keysAreLanes = (value: Record<string, unknown>): boolean =>
  Object.keys(value).length > 0 && Object.keys(value).every((k) => /^(emergency|deadletter|telemetry)$/.test(k));

/** Exports a counter from stats() given as a number, a {label: n} map or a {label: {label: n}} map. */
function addLossCounter(out: Exposition, key: string, value: unknown, buffer: boolean): void {
  const name = `${P}${buffer ? 'buffer_' : ''}${snake(key).replace(/_total$/, '')}_total`;
  const help = buffer ? `Buffer records counted by gateway.stats().${key}.` : `Refusals counted by gateway.stats().${key}.`;
  const first = /evict|expir/i.test(key) || (isRecord(value) && keysAreLanes(value)) ? 'lane' : 'reason';
  if (isNumber(value)) out.add(name, 'counter', help, value);
  else if (isRecord(value)) {
    for (const [a, inner] of Object.entries(value)) {
      if (isNumber(inner)) out.add(name, 'counter', help, inner, { [first]: a });
      else if (isRecord(inner)) {
        for (const [b, n] of Object.entries(inner)) {
          if (isNumber(n)) out.add(name, 'counter', help, n, first === 'lane' ? { lane: a, reason: b } : { reason: a, lane: b });
        }
      }
    }
  }
}

export function renderMetrics(snapshot: StatusSnapshot): string {
  const out = new Exposition();
  const { stats } = snapshot;
  const verdict = judgeHealth(snapshot);
  out.add(`${P}info`, 'gauge', 'Gateway identity; always 1.', 1, { gateway_id: snapshot.gatewayId });
  out.add(`${P}up`, 'gauge', '1 when serving and the buffer takes writes (what /healthz answers 200 for).', verdict.healthy ? 1 : 0);
  out.add(`${P}buffer_writable`, 'gauge', '0 after a group commit failed, until one succeeds.', snapshot.bufferWritable ? 1 : 0);
  if (snapshot.kafka !== 'unknown') {
    out.add(`${P}kafka_reachable`, 'gauge', 'Last known Kafka state: 0 after an error, 1 after an acknowledged batch.', snapshot.kafka === 'reachable' ? 1 : 0);
  }
  for (const [key, [name, help]] of Object.entries(KNOWN_COUNTERS)) {
    const v = stats[key];
    if (isNumber(v)) out.add(P + name, 'counter', help, v);
  }
  const num = (key: string): number => (isNumber(stats[key]) ? stats[key] : 0);
  const byLane = stats.depth;
  if (isRecord(byLane) && keysAreLanes(byLane)) {
    // Per lane only: a total beside the lanes in one family would double any sum().
    for (const [lane, n] of Object.entries(byLane)) {
      if (isNumber(n)) out.add(`${P}buffer_depth`, 'gauge', 'Records waiting in the buffer to be forwarded, by lane.', n, { lane });
    }
  } else {
    out.add(`${P}buffer_depth`, 'gauge', 'Records waiting in the buffer to be forwarded.', num('bufferDepth'));
  }
  out.add(`${P}buffer_bytes`, 'gauge', 'Payload bytes waiting in the buffer.', num('bufferBytes'));
  out.add(`${P}oldest_unsent_age_seconds`, 'gauge', 'Age of the oldest record waiting; 0 when none waits.', num('oldestUnsentAgeMs') / 1000);
  out.add(`${P}connected_devices`, 'gauge', 'MQTT clients connected now.', num('connectedDevices'));
  for (const [key, value] of Object.entries(stats)) {
    if (key in KNOWN_COUNTERS || KNOWN_GAUGES.has(key) || (key === 'depth' && isRecord(value) && keysAreLanes(value))) continue;
    if (LOSS_COUNTER.test(key)) addLossCounter(out, key, value, true);
    else if (DENY_COUNTER.test(key)) addLossCounter(out, key, value, false);
    else if (isNumber(value)) out.add(`${P}${snake(key)}`, 'untyped', `gateway.stats().${key}.`, value);
    else if (isRecord(value)) {
      const label = keysAreLanes(value) ? 'lane' : 'key';
      for (const [k, n] of Object.entries(value)) {
        if (isNumber(n)) out.add(`${P}${snake(key)}`, 'untyped', `gateway.stats().${key}.`, n, { [label]: k });
      }
    }
  }
  out.add(`${P}in_rate`, 'gauge', 'Events accepted per second over the last sampling interval.', snapshot.inRate);
  out.add(`${P}out_rate`, 'gauge', 'Records forwarded per second over the last sampling interval.', snapshot.outRate);
  out.add(`${P}process_uptime_seconds`, 'gauge', 'Seconds since the gateway process started.', snapshot.uptime);
  // Where the gateway's memory is (a small board has little): resident, V8 heap, and outside the heap
  // (buffers, SQLite, zstd, sockets).
  const memory = process.memoryUsage();
  out.add(`${P}process_resident_memory_bytes`, 'gauge', 'Resident set size of the gateway process.', memory.rss);
  out.add(`${P}process_heap_bytes`, 'gauge', 'V8 heap: total reserved, and used.', memory.heapTotal, { kind: 'total' });
  out.add(`${P}process_heap_bytes`, 'gauge', 'V8 heap: total reserved, and used.', memory.heapUsed, { kind: 'used' });
  out.add(`${P}process_external_memory_bytes`, 'gauge', 'Memory held by JavaScript objects outside the V8 heap (array buffers included).', memory.external);
  out.add(`${P}health_sample_failures_total`, 'counter', 'System health samples that failed or timed out.', snapshot.sampleFailures);
  const s = snapshot.sample;
  if (s) {
    out.add(`${P}health_sample_age_seconds`, 'gauge', 'Age of the cached system sample served here.', Math.max(0, Date.now() - s.at) / 1000);
    out.add(`${P}health_sample_duration_seconds`, 'gauge', 'How long the last system sample took.', s.durationMs / 1000);
    out.add(`${P}cpu_load_ratio`, 'gauge', 'CPU load, 0 to 1.', s.cpuLoad);
    out.add(`${P}memory_used_bytes`, 'gauge', 'Memory in use (total minus available).', s.memoryUsed);
    out.add(`${P}memory_total_bytes`, 'gauge', 'Memory installed.', s.memoryTotal);
    out.add(`${P}disk_free_bytes`, 'gauge', 'Free bytes on the buffer filesystem.', s.diskFree);
    out.add(`${P}disk_total_bytes`, 'gauge', 'Size of the buffer filesystem.', s.diskTotal);
    out.add(`${P}system_uptime_seconds`, 'gauge', 'Seconds since the machine booted.', s.systemUptime);
    // Absent sensor: no series at all, rather than a misleading 0.
    if (s.temperature !== undefined) out.add(`${P}temperature_celsius`, 'gauge', 'Board temperature.', s.temperature);
  }
  return out.render();
}

export interface HealthzBody extends HealthVerdict {
  status: 'ok' | 'unhealthy';
  gatewayId: string;
  state: string;
  bufferWritable: boolean;
  bufferError?: string;
  kafka: StatusSnapshot['kafka'];
  uptime: number;
  inRate: number;
  outRate: number;
  stats: Readonly<Record<string, unknown>>;
  system?: SystemSample & { ageSeconds: number };
  sampleFailures: number;
}

export function healthzBody(snapshot: StatusSnapshot): HealthzBody {
  const verdict = judgeHealth(snapshot);
  const body: HealthzBody = {
    status: verdict.healthy ? 'ok' : 'unhealthy',
    ...verdict,
    gatewayId: snapshot.gatewayId,
    state: snapshot.state,
    bufferWritable: snapshot.bufferWritable,
    kafka: snapshot.kafka,
    uptime: snapshot.uptime,
    inRate: snapshot.inRate,
    outRate: snapshot.outRate,
    stats: snapshot.stats,
    sampleFailures: snapshot.sampleFailures,
  };
  if (snapshot.bufferError !== undefined) body.bufferError = snapshot.bufferError;
  if (snapshot.sample) body.system = { ...snapshot.sample, ageSeconds: Math.max(0, Date.now() - snapshot.sample.at) / 1000 };
  return body;
}

export interface StatusServerOptions {
  host: string;
  port: number;
  snapshot: () => StatusSnapshot;
}

export interface StatusServer {
  start(): Promise<{ host: string; port: number }>;
  /** Stops listening and ends open connections; the same promise for every caller. */
  close(): Promise<void>;
  port(): number;
}

export function createStatusServer(options: StatusServerOptions): StatusServer {
  let server: Server | undefined;
  let closing: Promise<void> | undefined;

  const send = (res: ServerResponse, status: number, type: string, body: string, head: boolean): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(head ? undefined : body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
      return;
    }
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    try {
      if (path === '/healthz') {
        const body = healthzBody(options.snapshot());
        send(res, body.healthy ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, head);
      } else if (path === '/metrics') {
        send(res, 200, METRICS_CONTENT_TYPE, renderMetrics(options.snapshot()), head);
      } else {
        send(res, 404, 'text/plain; charset=utf-8', 'not found; try /healthz or /metrics\n', head);
      }
    } catch (err) {
      send(res, 500, 'text/plain; charset=utf-8', `status unavailable: ${(err as Error).message}\n`, head);
    }
  };

  return {
    async start() {
      if (server) throw gatewayErrors.create('GW_HTTP_LISTEN', 'start() called twice');
      const s = createServer(handle);
      server = s;
      s.keepAliveTimeout = 5000;
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) => reject(gatewayErrors.create('GW_HTTP_LISTEN', `${options.host}:${options.port}: ${err.message}`, err)));
        s.listen(options.port, options.host, () => resolve());
      });
      const address = s.address() as AddressInfo;
      return { host: address.address, port: address.port };
    },
    close() {
      if (closing) return closing;
      closing = new Promise<void>((resolve) => {
        if (!server?.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
        // A scraper's keep-alive connection must not hold shutdown open.
        server.closeAllConnections();
      });
      return closing;
    },
    port: () => (server?.address() as AddressInfo | null)?.port ?? 0,
  };
}

// ---- client side: `gateway status` ----

export interface MetricSample {
  name: string;
  labels: Labels;
  value: number;
}

/** Reads the sample lines of a Prometheus text exposition (enough for a summary; not a validator). */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Labels = {};
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

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

export function formatStatus(report: GatewayStatusReport): string {
  const { health: h, metrics } = report;
  const sum = (name: string): number => metrics.filter((m) => m.name === name).reduce((a, m) => a + m.value, 0);
  const num = (key: string): number => (isNumber(h.stats[key]) ? h.stats[key] : 0);
  const lines = [
    `gateway ${h.gatewayId} at ${report.url}: ${h.healthy ? 'HEALTHY' : 'UNHEALTHY'} (HTTP ${report.httpStatus}, state ${h.state})`,
  ];
  for (const reason of h.reasons) lines.push(`  ! ${reason}`);
  lines.push(
    `  uptime      ${Math.round(h.uptime)} s; Kafka ${h.kafka === 'unreachable' ? 'UNREACHABLE (buffering)' : h.kafka === 'reachable' ? 'reachable' : 'not contacted yet'}`,
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
