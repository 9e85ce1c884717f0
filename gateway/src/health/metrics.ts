// /metrics: the status snapshot as Prometheus text format 0.0.4, and a reader of that format for
// `gateway status`.
import { judgeHealth, type StatusSnapshot } from './status.ts';

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

export const isNumber = (v: unknown): v is number => typeof v === 'number' && !Number.isNaN(v);
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
    out.add(`${P}kafka_reachable`, 'gauge', 'Last known Kafka state: 1 when the brokers answer (also to say a topic is missing), 0 when they cannot be reached.', snapshot.kafka === 'unreachable' ? 0 : 1);
    out.add(`${P}kafka_topics_missing`, 'gauge', 'Topics the last batch was for that the brokers do not have (the names are in /healthz); records wait in the buffer.', snapshot.kafkaTopicsMissing?.length ?? 0);
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
  // Unknown (no time service to ask): no series, rather than a misleading 0 or 1.
  if (snapshot.clock !== undefined && snapshot.clock.state !== 'unknown') {
    out.add(`${P}clock_synchronized`, 'gauge', '1 when the system clock is synchronised (receive stamps say so in the gateway-clock-synced header).', snapshot.clock.state === 'synchronized' ? 1 : 0);
  }
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

// ---- reading an exposition (client side: `gateway status`) ----

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

