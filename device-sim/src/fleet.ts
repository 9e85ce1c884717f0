// A fleet of simulated devices, each its own MQTT 3.1.1 client publishing QoS 1 to its own topic.
// Per device: events in seq order, a bounded window of unacknowledged publishes, a steady rate (or a
// burst), and invalid payloads slipped in before chosen events without using up a seq.
import { EventEmitter } from 'node:events';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { SIM_KINDS, type SimDevice, type SimEvent, type SimKind } from './device.ts';
import { createDevice } from './devices.ts';
import { simErrors } from './errors.ts';
import { resolveFleetOptions, type FleetOptions, type ResolvedFleetOptions } from './fleet-options.ts';
import { makeInvalid, planInvalid, type InvalidDefect } from './invalid.ts';
import { Rng } from './rng.ts';

export interface KindStats {
  devices: number;
  published: number;
  acknowledged: number;
  invalidPublished: number;
  invalidAcknowledged: number;
}

export interface FleetStats {
  devices: number;
  /** Devices connected right now. */
  connected: number;
  /** Valid events published (invalid payloads are counted apart). */
  published: number;
  /** Valid events whose PUBACK arrived. */
  acknowledged: number;
  invalidPublished: number;
  invalidAcknowledged: number;
  /** Publishes waiting for their PUBACK. */
  inFlight: number;
  byKind: Record<SimKind, KindStats>;
  /** Invalid payloads published, by the protocol rule they break. */
  invalidByRule: Record<string, number>;
  invalidByDefect: Partial<Record<InvalidDefect, number>>;
  /** Publishes that failed (not counting those abandoned by stop()). */
  errors: number;
  reconnects: number;
  lastError?: string;
  startedAt?: number;
  elapsedMs: number;
  /** Every device published its eventsPerDevice and got every PUBACK. */
  done: boolean;
}

/** One acknowledged publish, for ledgers of what the gateway accepted. */
export interface AckRecord {
  deviceId: string;
  kind: SimKind;
  eventId: string;
  seq: number;
  valid: boolean;
  defect?: InvalidDefect;
  /** For invalid payloads, the protocol rule the gateway should report. */
  rule?: string;
}

export interface FleetEvents {
  ack: [AckRecord];
  /** A publish that failed (error SIM_PUBLISH_FAILED, with mqtt.js's error as its cause); the fleet does not resend it. */
  publishError: [{ deviceId: string; eventId: string; valid: boolean; error: Error }];
  connectionLost: [{ deviceId: string }];
  reconnected: [{ deviceId: string }];
  deviceError: [{ deviceId: string; error: Error }];
  done: [FleetStats];
}

/** Per-device publishing state. */
interface Runner {
  ordinal: number;
  device: SimDevice;
  client: MqttClient | undefined;
  connected: boolean;
  everConnected: boolean;
  /** Valid events published so far (= the next seq). */
  slot: number;
  /** The current slot's valid event, generated and waiting behind its invalid payloads. */
  current: SimEvent | undefined;
  pendingInvalid: number;
  inflight: number;
  pumping: boolean;
  finished: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Wall-clock time of slot 0 (paced mode). */
  t0: number;
  invalidRng: Rng;
  invalidPlan: Map<number, number> | undefined;
}

function emptyKindStats(devices: number): KindStats {
  return { devices, published: 0, acknowledged: 0, invalidPublished: 0, invalidAcknowledged: 0 };
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting on it; a rejection must not become an unhandled one.
  promise.catch(() => {});
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve: (v) => {
      d.settled = true;
      resolve(v);
    },
    reject: (e) => {
      d.settled = true;
      reject(e);
    },
  };
  return d;
}

/** A fleet of simulated devices. Created stopped: call start(), then stop() (or await done() first). */
export class Fleet extends EventEmitter<FleetEvents> {
  readonly options: Readonly<ResolvedFleetOptions>;
  readonly #runners: Runner[] = [];
  readonly #intervalMs: number;
  readonly #paced: boolean;
  #startPromise: Promise<void> | undefined;
  #stopPromise: Promise<void> | undefined;
  #stopping = false;
  #finishedCount = 0;
  readonly #done = deferred<FleetStats>();
  #drained: (() => void) | undefined;
  /** Settles connect attempts still waiting, so stop() ends start() at once. */
  readonly #connecting = new Set<(err?: Error) => void>();
  #startedAt: number | undefined;
  #stats: Omit<FleetStats, 'inFlight' | 'elapsedMs' | 'done' | 'startedAt' | 'byKind' | 'invalidByRule' | 'invalidByDefect' | 'lastError'> & {
    lastError: string | undefined;
  };
  readonly #byKind: Record<SimKind, KindStats>;
  readonly #byRule: Record<string, number> = {};
  readonly #byDefect: Partial<Record<InvalidDefect, number>> = {};

  constructor(options: FleetOptions) {
    super();
    const o = resolveFleetOptions(options);
    this.options = o;
    this.#paced = o.rate > 0;
    this.#intervalMs = o.rate > 0 ? 1000 / o.rate : 1000;
    const total = SIM_KINDS.reduce((n, k) => n + o.devices[k], 0);
    const plan = o.invalidCount === undefined
      ? undefined
      : planInvalid(o.invalidCount, total, o.eventsPerDevice ?? Math.max(10, 2 * Math.ceil(o.invalidCount / Math.max(1, total))), o.seed);
    const runId = o.startTime ?? Date.now();
    for (const kind of SIM_KINDS) {
      for (let index = 0; index < o.devices[kind]; index++) {
        const ordinal = this.#runners.length;
        const device = createDevice(kind, index, {
          seed: o.seed,
          deviceIdPrefix: o.prefix,
          intervalMs: this.#intervalMs,
          runId,
          ...(o.startTime === undefined ? {} : { startTime: o.startTime }),
        });
        this.#runners.push({
          ordinal,
          device,
          client: undefined,
          connected: false,
          everConnected: false,
          slot: 0,
          current: undefined,
          pendingInvalid: 0,
          inflight: 0,
          pumping: false,
          finished: false,
          timer: undefined,
          t0: 0,
          invalidRng: new Rng(o.seed, kind, index, 'invalid'),
          invalidPlan: plan?.get(ordinal),
        });
      }
    }
    this.#byKind = Object.fromEntries(SIM_KINDS.map((k) => [k, emptyKindStats(o.devices[k])])) as Record<SimKind, KindStats>;
    this.#stats = {
      devices: this.#runners.length,
      connected: 0,
      published: 0,
      acknowledged: 0,
      invalidPublished: 0,
      invalidAcknowledged: 0,
      errors: 0,
      reconnects: 0,
      lastError: undefined,
    };
  }

  /** The fleet's devices, e.g. to provision credentials before start(). */
  get devices(): readonly { deviceId: string; kind: SimKind; topic: string }[] {
    return this.#runners.map((r) => ({ deviceId: r.device.deviceId, kind: r.device.kind, topic: r.device.topic }));
  }

  /** Connects every device (connectConcurrency at a time); each starts publishing once connected. */
  start(): Promise<void> {
    if (this.#stopping) return Promise.reject(simErrors.create('SIM_CLOSED', 'start() after stop()'));
    if (this.#startPromise !== undefined) return this.#startPromise;
    this.#startPromise = this.#start();
    return this.#startPromise;
  }

  /**
   * Stops publishing, waits up to stopTimeoutMs for outstanding PUBACKs, then disconnects every client.
   * Idempotent: every caller gets the same promise.
   */
  stop(): Promise<void> {
    this.#stopPromise ??= this.#stop();
    return this.#stopPromise;
  }

  /** Resolves with the final stats once every device published eventsPerDevice events and all were acknowledged. */
  done(): Promise<FleetStats> {
    if (this.options.eventsPerDevice === undefined) return Promise.reject(simErrors.create('SIM_NO_EVENT_LIMIT'));
    return this.#done.promise;
  }

  stats(): FleetStats {
    let inFlight = 0;
    for (const r of this.#runners) inFlight += r.inflight;
    const { lastError, ...counts } = this.#stats;
    return {
      ...counts,
      inFlight,
      byKind: Object.fromEntries(SIM_KINDS.map((k) => [k, { ...this.#byKind[k] }])) as Record<SimKind, KindStats>,
      invalidByRule: { ...this.#byRule },
      invalidByDefect: { ...this.#byDefect },
      ...(lastError === undefined ? {} : { lastError }),
      ...(this.#startedAt === undefined ? {} : { startedAt: this.#startedAt }),
      elapsedMs: this.#startedAt === undefined ? 0 : Date.now() - this.#startedAt,
      done: this.#done.settled && this.#finishedCount === this.#runners.length,
    };
  }

  async #start(): Promise<void> {
    this.#startedAt = Date.now();
    const queue = [...this.#runners];
    let failure: Error | undefined;
    const worker = async () => {
      while (queue.length > 0 && failure === undefined && !this.#stopping) {
        const runner = queue.shift() as Runner;
        try {
          await this.#connect(runner);
        } catch (err) {
          failure ??= err as Error;
        }
      }
    };
    const workers = Math.min(this.options.connectConcurrency, Math.max(1, queue.length));
    await Promise.all(Array.from({ length: workers }, worker));
    if (failure === undefined && this.#stopping) failure = simErrors.create('SIM_CLOSED', 'stopped while starting');
    if (failure !== undefined) {
      await this.stop();
      throw failure;
    }
    this.#checkDone();
  }

  #connect(r: Runner): Promise<void> {
    const o = this.options;
    const deviceId = r.device.deviceId;
    const clientOptions: IClientOptions = {
      clientId: deviceId,
      protocolVersion: 4,
      clean: true,
      keepalive: o.keepalive,
      reconnectPeriod: o.reconnectPeriod,
      connectTimeout: Math.min(o.connectTimeoutMs, 30_000),
      resubscribe: false,
      ...o.credentials(deviceId),
    };
    return new Promise<void>((resolve, reject) => {
      let lastError: Error | undefined;
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#connecting.delete(settle);
        if (err === undefined) resolve();
        else reject(err);
      };
      this.#connecting.add(settle);
      const timer = setTimeout(() => {
        const detail = `${deviceId} not connected after ${o.connectTimeoutMs} ms`;
        settle(simErrors.create('SIM_CONNECT_TIMEOUT', lastError ? `${detail} (${lastError.message})` : detail, lastError));
      }, o.connectTimeoutMs);
      timer.unref();

      const client = connect(o.url, clientOptions);
      r.client = client;
      client.on('connect', () => {
        r.connected = true;
        this.#stats.connected++;
        if (r.everConnected) {
          this.#stats.reconnects++;
          this.emit('reconnected', { deviceId });
        } else {
          r.everConnected = true;
          r.t0 = Date.now() + r.invalidRng.fork('phase').next() * (this.#paced ? this.#intervalMs : 0);
          settle();
          this.#pump(r);
        }
      });
      client.on('close', () => {
        if (!r.connected) return;
        r.connected = false;
        this.#stats.connected--;
        if (!this.#stopping) this.emit('connectionLost', { deviceId });
      });
      client.on('end', () => settle(simErrors.create('SIM_CLOSED', `${deviceId} closed before it connected`)));
      client.on('error', (error: Error & { code?: unknown }) => {
        lastError = error;
        this.#stats.lastError = `${deviceId}: ${error.message}`;
        // A CONNACK refusal (bad credentials, not authorised) carries a numeric reason code and ends retrying.
        if (typeof error.code === 'number') {
          const refused = simErrors.create('SIM_CONNECT_REFUSED', `${deviceId}: ${error.message}`, error);
          if (!r.everConnected) settle(refused);
          else if (!this.#stopping) {
            this.emit('deviceError', { deviceId, error: refused });
            if (!this.#done.settled && this.options.eventsPerDevice !== undefined) this.#done.reject(refused);
          }
        } else if (r.everConnected && !this.#stopping) {
          this.emit('deviceError', { deviceId, error });
        }
      });
    });
  }

  #dueSlots(r: Runner): number {
    if (!this.#paced) return Number.POSITIVE_INFINITY;
    return Math.floor((Date.now() - r.t0) / this.#intervalMs) + 1;
  }

  #invalidCountFor(r: Runner, slot: number): number {
    if (r.invalidPlan !== undefined) return r.invalidPlan.get(slot) ?? 0;
    const rate = this.options.invalidRate;
    if (rate <= 0) return 0;
    // Geometric: on average rate / (1 - rate) invalid per valid event, i.e. `rate` of all publishes.
    let n = 0;
    while (n < 100 && r.invalidRng.next() < rate) n++;
    return n;
  }

  #pump(r: Runner): void {
    if (this.#stopping || r.client === undefined || r.finished || r.pumping) return;
    r.pumping = true;
    const limit = this.options.eventsPerDevice;
    let waitForTick = false;
    try {
      while (r.inflight < this.options.maxInflight) {
        if (r.current === undefined) {
          if (limit !== undefined && r.slot >= limit) break;
          if (r.slot >= this.#dueSlots(r)) {
            waitForTick = true;
            break;
          }
          // Paced devices stamp the time their tick was due, so a device catching up after an outage
          // sends what it would have measured then, like a device with a buffer.
          r.current = r.device.next(this.#paced ? Math.round(r.t0 + r.slot * this.#intervalMs) : Date.now());
          r.pendingInvalid = this.#invalidCountFor(r, r.slot);
        }
        if (r.pendingInvalid > 0) {
          r.pendingInvalid--;
          this.#publishInvalid(r, r.current);
        } else {
          const event = r.current;
          r.current = undefined;
          r.slot++;
          this.#publishValid(r, event);
        }
      }
    } finally {
      r.pumping = false;
    }
    if (waitForTick && r.timer === undefined && !this.#stopping) {
      const delay = Math.max(0, r.t0 + r.slot * this.#intervalMs - Date.now());
      r.timer = setTimeout(() => {
        r.timer = undefined;
        this.#pump(r);
      }, delay);
      r.timer.unref();
    }
    this.#checkRunner(r);
  }

  #publishValid(r: Runner, event: SimEvent): void {
    const kind = r.device.kind;
    this.#stats.published++;
    this.#byKind[kind].published++;
    const record: AckRecord = { deviceId: r.device.deviceId, kind, eventId: event.eventId, seq: event.seq, valid: true };
    this.#publish(r, Buffer.from(JSON.stringify(event)), record);
  }

  #publishInvalid(r: Runner, basis: SimEvent): void {
    const kind = r.device.kind;
    const defect = r.invalidRng.pick(this.options.defects);
    const invalid = makeInvalid(defect, r.invalidRng, basis);
    this.#stats.invalidPublished++;
    this.#byKind[kind].invalidPublished++;
    this.#byRule[invalid.rule] = (this.#byRule[invalid.rule] ?? 0) + 1;
    this.#byDefect[defect] = (this.#byDefect[defect] ?? 0) + 1;
    const record: AckRecord = {
      deviceId: r.device.deviceId, kind, eventId: invalid.eventId, seq: basis.seq, valid: false, defect, rule: invalid.rule,
    };
    this.#publish(r, invalid.payload, record);
  }

  #publish(r: Runner, payload: Buffer, record: AckRecord): void {
    const client = r.client as MqttClient;
    r.inflight++;
    // mqtt.js keeps QoS 1 packets in its outgoing store across reconnects and resends them in order;
    // the callback fires on PUBACK.
    client.publish(r.device.topic, payload, { qos: 1 }, (error) => {
      r.inflight--;
      if (error !== undefined && error !== null) {
        if (!this.#stopping) {
          this.#stats.errors++;
          this.#stats.lastError = `${record.deviceId}: ${error.message}`;
          const failure = simErrors.create('SIM_PUBLISH_FAILED', `${record.deviceId} event ${record.eventId}: ${error.message}`, error);
          this.emit('publishError', { deviceId: record.deviceId, eventId: record.eventId, valid: record.valid, error: failure });
        }
      } else {
        const k = this.#byKind[record.kind];
        if (record.valid) {
          this.#stats.acknowledged++;
          k.acknowledged++;
        } else {
          this.#stats.invalidAcknowledged++;
          k.invalidAcknowledged++;
        }
        this.emit('ack', record);
      }
      if (this.#stopping) {
        if (this.#drained !== undefined && this.#runners.every((x) => x.inflight === 0)) this.#drained();
      } else {
        this.#pump(r);
      }
    });
  }

  #checkRunner(r: Runner): void {
    const limit = this.options.eventsPerDevice;
    if (r.finished || limit === undefined) return;
    if (r.slot >= limit && r.current === undefined && r.inflight === 0) {
      r.finished = true;
      this.#finishedCount++;
      this.#checkDone();
    }
  }

  #checkDone(): void {
    if (this.#done.settled || this.options.eventsPerDevice === undefined) return;
    if (this.#startPromise === undefined || this.#finishedCount < this.#runners.length) return;
    if (this.#runners.some((r) => !r.everConnected)) return;
    const stats = this.stats();
    stats.done = true;
    this.#done.resolve(stats);
    this.emit('done', stats);
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    for (const settle of [...this.#connecting]) settle(simErrors.create('SIM_CLOSED', 'stopped while connecting'));
    for (const r of this.#runners) {
      if (r.timer !== undefined) clearTimeout(r.timer);
      r.timer = undefined;
    }
    // Give outstanding publishes their PUBACK first: the gateway may already have them committed.
    if (this.#runners.some((r) => r.inflight > 0) && this.options.stopTimeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.stopTimeoutMs);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#drained = undefined;
    }
    await Promise.all(this.#runners.map((r) => (r.client === undefined ? undefined : endClient(r.client, r.inflight > 0 || !r.connected))));
    if (!this.#done.settled && this.options.eventsPerDevice !== undefined) {
      this.#done.reject(simErrors.create('SIM_STOPPED_BEFORE_DONE', `${this.#finishedCount} of ${this.#runners.length} devices finished`));
    }
  }
}

/** Ends a client; forced when it cannot finish cleanly. mqtt.js never calls back for a client already offline, hence the cap. */
function endClient(client: MqttClient, force: boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    timer.unref();
    client.end(force, {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function createFleet(options: FleetOptions): Fleet {
  return new Fleet(options);
}

/** Keeps every acknowledged publish of a fleet by event id (for "nothing lost, nothing duplicated" checks). */
export interface AckLedger {
  readonly valid: ReadonlyMap<string, AckRecord>;
  readonly invalid: ReadonlyMap<string, AckRecord>;
  /** PUBACKs received more than once for the same event id (should stay 0). */
  readonly duplicates: number;
  dispose(): void;
}

export function createAckLedger(fleet: Fleet): AckLedger {
  const valid = new Map<string, AckRecord>();
  const invalid = new Map<string, AckRecord>();
  let duplicates = 0;
  const onAck = (record: AckRecord) => {
    const map = record.valid ? valid : invalid;
    if (map.has(record.eventId)) duplicates++;
    map.set(record.eventId, record);
  };
  fleet.on('ack', onAck);
  return {
    valid,
    invalid,
    get duplicates() {
      return duplicates;
    },
    dispose: () => fleet.off('ack', onAck),
  };
}
