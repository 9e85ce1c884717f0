// The live engine (cloud live): its own consumer group over the event topics and the internal
// contributions topic. Two stages in one process:
//   1. windows.ts  events → per-partition window contributions → the partials topic (key kpi|key)
//   2. merge.ts    contributions → merged KPI windows → the KPI topic, alerts → the alerts topic,
//                  finished windows and alerts → the live output port (Power BI, Eventstream)
// Every tick (≤ 2 s): emit what changed, wait until Kafka acknowledged it, then commit each source
// partition at the first offset its open windows still need, with the watermark mark as commit
// metadata (see windows.ts). A kill -9 therefore replays only what open windows need, and the replay
// reproduces the same contributions before it emits anything.
import { EventEmitter } from 'node:events';
// Before any consumer fetches: kafkajs then decodes records with the sink's decoder (see the module).
import '../sink/kafkajs-records.ts';
import { Kafka, logLevel, Partitioners, type Admin, type Consumer, type EachBatchPayload, type Message, type Producer } from 'kafkajs';
import {
  createLifecycle,
  encodePayload,
  EVENT_KINDS,
  recordHeaders,
  sleep,
  withTimeout,
  type DeadLetter,
  type EventKind,
  type Lifecycle,
  type LifecycleState,
  type Log,
} from '@city/protocol';
import { cloudErrors, errorMessage, lifecycleErrors } from '../errors.ts';
import { createRecordDecoder, type RecordDecoder } from '../sink/records.ts';
import { rowReader } from './aggregate.ts';
import { AlertEngine, type Alert } from './alerts.ts';
import { checkDefinitions, KPI_DEFINITIONS } from './definitions.ts';
import { Merger, type MergedWindow } from './merge.ts';
import { resolveLiveOptions, type LiveOptions, type ResolvedLiveOptions } from './options.ts';
import { alertRow, kpiRow, type KpiUpdate } from './output.ts';
import { decodeMark, encodeMark, WindowEngine, type Commit, type CommitMark, type Contribution, type LateEvent } from './windows.ts';

export interface LiveStats {
  events: number;
  late: number;
  contributions: number;
  kpiUpdates: number;
  finals: number;
  alerts: number;
  openWindows: number;
  mergedWindows: number;
  commits: number;
  commitFailures: number;
  produceFailures: number;
  lastProduceError?: string | undefined;
  ticks: number;
  /** Event-topic partitions this instance holds after its last group join. */
  assignedPartitions: number;
}

export interface LiveEvents {
  kpi: [KpiUpdate];
  alert: [Alert];
  tick: [{ watermark: number; stats: LiveStats }];
  crash: [{ error: Error; restart: boolean }];
}

const iso = (ms: number) => new Date(ms).toISOString();
/** Records per produce request: ~300 B each keeps a request well under the broker's 1 MiB default. */
const SEND_CHUNK = 1_000;

export class Live extends EventEmitter<LiveEvents> {
  readonly options: Readonly<ResolvedLiveOptions>;
  readonly #log: Log;
  readonly #life: Lifecycle;
  readonly #engine: WindowEngine;
  readonly #merger: Merger;
  readonly #alerts: AlertEngine;
  readonly #decode: RecordDecoder;
  readonly #kindByTopic: Map<string, EventKind>;
  readonly #eventTopics: string[];
  #consumer: Consumer | undefined;
  #producer: Producer | undefined;
  #admin: Admin | undefined;
  /** Marks of the current assignment, fetched once per group join; batches wait for them. */
  #ready: Promise<void> = Promise.resolve();
  #pendingLate: { late: LateEvent[]; message: { key: Buffer | null; value: Buffer | null }; gatewayId: string; receivedAt: number }[] = [];
  #pendingAlerts: Alert[] = [];
  #ticking: Promise<void> | undefined;
  /** Emitted records Kafka has not acknowledged yet, oldest first. */
  readonly #outbox: { topic: string; message: Message }[] = [];
  #lastProduceError: string | undefined;
  readonly #stop = new AbortController();
  readonly #stats: LiveStats = { events: 0, late: 0, contributions: 0, kpiUpdates: 0, finals: 0, alerts: 0, openWindows: 0, mergedWindows: 0, commits: 0, commitFailures: 0, produceFailures: 0, ticks: 0, assignedPartitions: 0 };

  constructor(options: LiveOptions) {
    super();
    this.options = Object.freeze(resolveLiveOptions(options));
    const o = this.options;
    this.#log = o.log;
    const problems = checkDefinitions(KPI_DEFINITIONS);
    if (problems.length > 0) throw cloudErrors.create('CLD_LIVE_DEFINITIONS', problems.join('; '));
    this.#life = createLifecycle({ name: 'live', deadlineMs: o.closeTimeoutMs, errors: lifecycleErrors });
    this.#engine = new WindowEngine({ definitions: KPI_DEFINITIONS, allowedLatenessMs: o.allowedLatenessMs, idleTimeoutMs: o.idleTimeoutMs });
    this.#merger = new Merger({ allowedLatenessMs: o.allowedLatenessMs, graceMs: o.mergeGraceMs });
    this.#alerts = new AlertEngine(o.alerts);
    this.#decode = createRecordDecoder(o.topics);
    // KPIs read some kinds; alerts read weather, emergency and gateway health too.
    const kinds = new Set<EventKind>([...this.#engine.kinds(), 'weather', 'emergency', 'gateway_health']);
    this.#kindByTopic = new Map(EVENT_KINDS.filter((k) => kinds.has(k)).map((k) => [o.topics.events[k], k]));
    this.#eventTopics = [...this.#kindByTopic.keys()];
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  stats(): LiveStats {
    return { ...this.#stats, openWindows: this.#engine.stats().openWindows, mergedWindows: this.#merger.stats().openWindows, late: this.#engine.stats().late, lastProduceError: this.#lastProduceError };
  }

  start(): Promise<void> {
    return this.#life.start(() => this.#open());
  }

  /** Stops consuming, emits and commits what is final, closes the output and disconnects. */
  close(): Promise<void> {
    return this.#life.close();
  }

  async #open(): Promise<void> {
    const o = this.options;
    const life = this.#life;
    const kafka = new Kafka({ clientId: o.clientId, brokers: o.brokers, logLevel: logLevel.WARN, logCreator: () => (entry) => this.#log(entry.level === logLevel.ERROR ? 'info' : 'debug', `kafkajs: ${entry.log.message}`) });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
    const admin = kafka.admin();
    const consumer = kafka.consumer({
      groupId: o.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(o.sessionTimeoutMs / 3)),
      maxWaitTimeInMs: 500,
    });
    this.#producer = producer;
    this.#admin = admin;
    this.#consumer = consumer;
    if (o.output !== undefined) {
      const output = o.output;
      await output.start();
      life.defer(`output ${output.name}`, () => output.close());
    }
    try {
      await withTimeout(Promise.all([producer.connect(), admin.connect()]), 30_000, 'connecting to Kafka');
    } catch (err) {
      throw cloudErrors.create('CLD_KAFKA_START', `live: ${errorMessage(err)}`, err);
    }
    life.defer('Kafka producer', () => producer.disconnect());
    life.defer('Kafka admin', () => admin.disconnect());
    consumer.on(consumer.events.GROUP_JOIN, (event) => this.#joined(event.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (event) => {
      this.#log('error', 'live consumer crashed', { error: event.payload.error, restart: event.payload.restart });
      this.emit('crash', { error: cloudErrors.create('CLD_KAFKA_CRASH', errorMessage(event.payload.error), event.payload.error), restart: event.payload.restart });
    });
    const topics = [...this.#eventTopics, o.liveTopics.partials];
    try {
      await consumer.connect();
      life.defer('Kafka consumer', () => consumer.disconnect());
      await consumer.subscribe({ topics, fromBeginning: o.fromBeginning });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (p) => this.#batch(p) });
    } catch (err) {
      const existing = new Set(await admin.listTopics().catch(() => topics));
      const missing = [...topics, o.liveTopics.kpi, o.liveTopics.alerts].filter((t) => !existing.has(t));
      throw cloudErrors.create('CLD_KAFKA_START', missing.length > 0 ? `live: topics do not exist: ${missing.join(', ')}` : `live: ${errorMessage(err)}`, err);
    }
    // Closed in reverse: stop fetching, then a last tick emits and commits what is final.
    life.defer('last tick', async () => {
      this.#stop.abort();
      await this.#ticking;
      await this.#tick();
      await o.output?.flush();
    });
    life.defer('fetching', () => {
      try {
        consumer.pause(topics.map((topic) => ({ topic })));
      } catch {
        // not running
      }
    });
    this.#ticking = this.#loop();
    this.#log('info', 'live started', { groupId: o.groupId, topics: topics.length, allowedLatenessMs: o.allowedLatenessMs, output: o.output?.name ?? 'none' });
  }

  #joined(assignment: Record<string, number[]>): void {
    // kafkajs resumes every partition at its committed offset after a join: all state is rebuilt
    // from there (quietly, see windows.ts), also for partitions this instance kept.
    for (const s of this.#engine.owned()) this.#engine.revoke(s);
    for (const s of this.#merger.owned()) this.#merger.revoke(s);
    const partials = this.options.liveTopics.partials;
    this.#stats.assignedPartitions = Object.entries(assignment).reduce((n, [topic, parts]) => n + (topic === partials ? 0 : parts.length), 0);
    this.#ready = this.#fetchMarks(assignment).then(
      ({ marks, backlog }) => {
        const now = this.options.now();
        for (const [topic, partitions] of Object.entries(assignment)) {
          for (const partition of partitions) {
            const source = `${topic}/${partition}`;
            const mark = marks.get(source);
            if (topic === partials) this.#merger.assign(source, mark);
            else {
              const kind = this.#kindByTopic.get(topic);
              if (kind !== undefined) {
                this.#engine.assign(source, kind, mark, now);
                this.#engine.setCaughtUp(source, !backlog.has(source));
              }
            }
          }
        }
        this.#log('info', 'live assignment', { partitions: Object.values(assignment).reduce((n, p) => n + p.length, 0), restored: marks.size });
      },
      (err: unknown) => this.#log('error', 'could not read the committed marks; starting the assignment fresh', { error: errorMessage(err) }),
    );
  }

  /** Commit marks of the assigned partitions, and which of them have records waiting. */
  async #fetchMarks(assignment: Record<string, number[]>): Promise<{ marks: Map<string, CommitMark>; backlog: Set<string> }> {
    const marks = new Map<string, CommitMark>();
    const backlog = new Set<string>();
    const admin = this.#admin;
    const topics = Object.keys(assignment);
    if (admin === undefined || topics.length === 0) return { marks, backlog };
    const offsets = await withTimeout(admin.fetchOffsets({ groupId: this.options.groupId, topics }), 15_000, 'fetching committed offsets');
    const committed = new Map<string, bigint>();
    for (const t of offsets) {
      for (const p of t.partitions as { partition: number; offset: string; metadata: string | null }[]) {
        const mark = decodeMark(p.metadata);
        committed.set(`${t.topic}/${p.partition}`, BigInt(p.offset));
        if (mark !== undefined && p.offset !== '-1') marks.set(`${t.topic}/${p.partition}`, mark);
      }
    }
    for (const topic of topics) {
      for (const p of await withTimeout(admin.fetchTopicOffsets(topic), 15_000, 'fetching topic offsets')) {
        const source = `${topic}/${p.partition}`;
        const from = committed.get(source) ?? -1n;
        if (BigInt(p.high) > (from < 0n ? BigInt(p.low) : from)) backlog.add(source);
      }
    }
    return { marks, backlog };
  }

  async #batch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    await this.#ready;
    const source = `${batch.topic}/${batch.partition}`;
    const now = this.options.now();
    const partials = batch.topic === this.options.liveTopics.partials;
    const kind = this.#kindByTopic.get(batch.topic);
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.#stop.signal.aborted) return;
      const offset = BigInt(message.offset);
      // Resolving only moves kafkajs's fetch position; what is committed is the engine's business.
      resolveOffset(message.offset);
      if (partials) {
        const c = parseContribution(message.value);
        if (c !== undefined) this.#merger.add(source, offset, c);
        continue;
      }
      if (kind === undefined) continue;
      const decoded = this.#decode(batch.topic, message);
      // Invalid records are the sink's to dead-letter; the live engine only skips them.
      if (decoded.rejected !== undefined || decoded.table !== kind) continue;
      const read = rowReader(kind, decoded.row);
      const eventMs = read('date_observed');
      if (typeof eventMs !== 'number') continue;
      this.#stats.events++;
      const eventId = read('event_id');
      const late = this.#engine.add(source, kind, offset, eventMs, decoded.row, typeof eventId === 'string' ? eventId : undefined, now);
      if (late.length > 0) {
        const gatewayId = read('gateway_id');
        const receivedAt = read('received_at');
        this.#pendingLate.push({ late, message, gatewayId: typeof gatewayId === 'string' ? gatewayId : '', receivedAt: typeof receivedAt === 'number' ? receivedAt : eventMs });
      }
      this.#eventAlerts(kind, read, eventMs, now);
    }
    const last = batch.messages.at(-1);
    if (!partials && last !== undefined) this.#engine.setCaughtUp(source, BigInt(last.offset) + 1n >= BigInt(batch.highWatermark));
    await heartbeat();
  }

  #eventAlerts(kind: EventKind, read: (column: string) => unknown, eventMs: number, now: number): void {
    const num = (c: string) => {
      const v = read(c);
      return typeof v === 'number' ? v : null;
    };
    const device = String(read('device_id'));
    const out = this.#pendingAlerts;
    if (kind === 'weather') {
      out.push(...this.#alerts.observe('wind', device, eventMs, eventMs, num('wind_speed')));
      out.push(...this.#alerts.observe('heat', device, eventMs, eventMs, num('temperature')));
      out.push(...this.#alerts.observe('fog', device, eventMs, eventMs, num('relative_humidity')));
    } else if (kind === 'emergency') {
      out.push(...this.#alerts.incident(String(read('incident_id')), eventMs, String(read('severity')), String(read('incident_status')), `${String(read('category'))}/${String(read('sub_category'))}`));
    } else if (kind === 'gateway_health') {
      out.push(...this.#alerts.gatewayReport(device, eventMs, now));
      out.push(...this.#alerts.observe('backlog', device, eventMs, eventMs, num('buffer_depth')));
    }
  }

  async #loop(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      await sleep(this.options.tickMs, { signal: this.#stop.signal });
      if (this.#stop.signal.aborted) break;
      await this.#tick().catch((err: unknown) => this.#log('error', 'live tick failed', { error: errorMessage(err) }));
    }
  }

  /** Emits what changed, then commits what is safe once Kafka has it. */
  async #tick(): Promise<void> {
    const o = this.options;
    const producer = this.#producer;
    if (producer === undefined) return;
    await this.#ready;
    const now = o.now();
    const stage1 = this.#engine.tick(now);
    const stage2 = this.#merger.tick(now);
    const late = this.#pendingLate.splice(0);
    const alerts = this.#pendingAlerts.splice(0);
    const emittedAt = iso(now);
    const updates = stage2.windows.map((w) => kpiUpdate(w, emittedAt));
    for (const u of updates) alerts.push(...this.#windowAlerts(u));
    alerts.push(...this.#alerts.checkGateways(now));

    const topicMessages: { topic: string; messages: Message[] }[] = [];
    if (stage1.contributions.length > 0) {
      topicMessages.push({ topic: o.liveTopics.partials, messages: stage1.contributions.map((c) => ({ key: `${c.kpi}|${c.key}`, value: JSON.stringify(c) })) });
    }
    if (updates.length > 0) {
      topicMessages.push({ topic: o.liveTopics.kpi, messages: updates.map((u) => ({ key: `${u.kpi}|${u.key}|${u.windowStart}`, value: JSON.stringify(u) })) });
    }
    if (alerts.length > 0) topicMessages.push({ topic: o.liveTopics.alerts, messages: alerts.map((a) => ({ key: a.alertId, value: JSON.stringify(a) })) });
    if (late.length > 0) topicMessages.push({ topic: o.topics.deadletter, messages: late.map((l) => lateLetter(l)) });
    for (const t of topicMessages) for (const m of t.messages) this.#outbox.push({ topic: t.topic, message: m });
    // In requests of bounded size (a broker refuses record batches over its message.max.bytes); what
    // Kafka did not take stays in the outbox for the next tick, and nothing is committed meanwhile.
    while (this.#outbox.length > 0) {
      const chunk = this.#outbox.slice(0, SEND_CHUNK);
      const byTopic = new Map<string, Message[]>();
      for (const { topic, message } of chunk) byTopic.set(topic, [...(byTopic.get(topic) ?? []), message]);
      try {
        await producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })), acks: -1 });
        this.#outbox.splice(0, chunk.length);
      } catch (err) {
        this.#stats.produceFailures++;
        this.#lastProduceError = cloudErrors.create('CLD_LIVE_PRODUCE', errorMessage(err), err).message;
        this.#log('warn', 'live: Kafka did not take this tick; retrying next tick', { error: this.#lastProduceError });
        return;
      }
    }
    this.#stats.ticks++;
    this.#stats.contributions += stage1.contributions.length;
    this.#stats.kpiUpdates += updates.length;
    this.#stats.alerts += alerts.length;
    for (const u of updates) {
      if (u.final) this.#stats.finals++;
      this.emit('kpi', u);
    }
    for (const a of alerts) this.emit('alert', a);
    const output = o.output;
    if (output !== undefined) {
      // Only finished windows and alerts: early updates would spend the push limits on figures that change.
      const byKpi = new Map<string, KpiUpdate[]>();
      for (const u of updates) if (u.final) byKpi.set(u.kpi, [...(byKpi.get(u.kpi) ?? []), u]);
      for (const [kpi, list] of byKpi) output.write(kpi, list.map(kpiRow));
      if (alerts.length > 0) output.write('alerts', alerts.map(alertRow));
    }
    await this.#commit([...stage1.commits, ...stage2.commits]);
    this.emit('tick', { watermark: this.#engine.watermark(now), stats: this.stats() });
  }

  #windowAlerts(u: KpiUpdate): Alert[] {
    const from = Date.parse(u.windowStart);
    const at = Date.parse(u.windowEnd);
    const v = (name: string) => {
      const x = u.values[name];
      return typeof x === 'number' ? x : null;
    };
    if (u.kpi === 'traffic_district_5m') return this.#alerts.observe('congestion', u.key, from, at, v('travel_time_index'));
    if (u.kpi === 'air_quality_station_hour') return this.#alerts.observe('aqi', u.key, from, at, v('aqi_pm25'));
    if (u.kpi === 'weather_station_hour') return this.#alerts.observe('gust', u.key, from, at, v('max_wind_speed'));
    return [];
  }

  async #commit(commits: readonly Commit[]): Promise<void> {
    const consumer = this.#consumer;
    if (consumer === undefined || commits.length === 0) return;
    try {
      await consumer.commitOffsets(
        commits.map((c) => {
          const slash = c.source.lastIndexOf('/');
          return { topic: c.source.slice(0, slash), partition: Number(c.source.slice(slash + 1)), offset: c.offset, metadata: encodeMark(c.mark) };
        }),
      );
      this.#stats.commits++;
    } catch (err) {
      // A rebalance under way: the next owner replays from the previous commit, which is safe.
      this.#stats.commitFailures++;
      this.#log('info', 'live: commit refused; the next commit covers it', { error: cloudErrors.create('CLD_COMMIT', errorMessage(err), err).message });
    }
  }
}

export function createLive(options: LiveOptions): Live {
  return new Live(options);
}

function kpiUpdate(w: MergedWindow, emittedAt: string): KpiUpdate {
  return {
    kpi: w.kpi, key: w.key, windowStart: iso(w.windowStart), windowEnd: iso(w.windowEnd), final: w.final, emittedAt,
    partial: w.partial, values: w.values, sources: w.sources, revision: w.revision,
  };
}

function parseContribution(value: Buffer | null): Contribution | undefined {
  if (value === null) return undefined;
  try {
    const c = JSON.parse(value.toString('utf8')) as Contribution;
    return typeof c.kpi === 'string' && typeof c.source === 'string' && typeof c.windowStart === 'number' ? c : undefined;
  } catch {
    return undefined;
  }
}

function lateLetter(l: { late: LateEvent[]; message: { key: Buffer | null; value: Buffer | null }; gatewayId: string; receivedAt: number }): Message {
  const first = l.late[0]!;
  const letter: DeadLetter = {
    stage: 'live',
    reason: first.reason,
    problems: l.late.map((x) => ({ path: '/dateObserved', rule: 'late', message: x.reason })),
    ...encodePayload(l.message.value ?? Buffer.alloc(0)),
    mqttTopic: '',
    clientId: '',
    gatewayId: l.gatewayId,
    receivedAt: l.receivedAt,
    kind: first.kind,
    ...(l.message.key === null ? {} : { deviceId: l.message.key.toString('utf8') }),
    ...(first.eventId === undefined ? {} : { eventId: first.eventId }),
  };
  return {
    key: l.message.key,
    value: JSON.stringify(letter),
    headers: recordHeaders({ gatewayId: l.gatewayId, receivedAt: l.receivedAt, eventId: first.eventId ?? null }),
  };
}
