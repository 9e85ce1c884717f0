// MQTT 3.1.1 QoS 1 load generator for the gateway benchmarks: raw packets over node:net from
// worker threads, many in flight per connection, so the generator is not what gets measured.
// Each connection is one simulated device publishing real @city/device-sim events to its own topic;
// packets are encoded once as templates, and each send copies one, stamps a packet id and makes the
// event id unique (its last 12 hex digits carry a per-run counter).
import { createConnection, type Socket } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { SIM_KINDS, createDevice } from '@city/device-sim';
import { sleep } from '@city/protocol';

export interface LoadOptions {
  host: string;
  port: number;
  connections: number;
  /** Unacknowledged publishes allowed per connection. */
  inflight: number;
  /** 0 = as fast as acknowledgements allow; else messages per second per connection. */
  ratePerConnection: number;
  warmupMs: number;
  durationMs: number;
  workers: number;
  prefix: string;
  credentials?: { username: string; password: string };
}

export interface LoadResult {
  acked: number;
  sent: number;
  /** Acknowledged within the measured window (after warm-up). */
  measuredAcked: number;
  measuredMs: number;
  rate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Mean payload size of the events sent (bytes). */
  payloadBytes: number;
  errors: string[];
}

interface WorkerInput extends LoadOptions {
  first: number;
  count: number;
  workerIndex: number;
}

interface WorkerOutput {
  acked: number;
  sent: number;
  measuredAcked: number;
  latencies: Float64Array;
  payloadBytes: number;
  payloads: number;
  errors: string[];
}

const TEMPLATES_PER_CONNECTION = 64;

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

function connectPacket(clientId: string, credentials: LoadOptions['credentials'], keepalive = 60): Buffer {
  const flags = 0x02 | (credentials ? 0xc0 : 0);
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, flags, keepalive >> 8, keepalive & 0xff]),
    str(clientId),
    ...(credentials ? [str(credentials.username), str(credentials.password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

interface Template {
  packet: Buffer;
  packetIdOffset: number;
  /** Offset of the last 12 hex digits of the event id inside the packet. */
  idTailOffset: number;
}

function publishTemplate(topic: string, payload: Buffer, eventId: string): Template {
  const topicBuf = str(topic);
  const bodyLength = topicBuf.length + 2 + payload.length;
  const header = Buffer.from([0x32, ...remainingLength(bodyLength)]);
  const packet = Buffer.concat([header, topicBuf, Buffer.from([0, 0]), payload]);
  const at = payload.indexOf(eventId);
  if (at < 0) throw new Error('event id not found in payload');
  return { packet, packetIdOffset: header.length + topicBuf.length, idTailOffset: header.length + topicBuf.length + 2 + at + eventId.length - 12 };
}

async function runWorker(input: WorkerInput): Promise<WorkerOutput> {
  const errors: string[] = [];
  let acked = 0;
  let sent = 0;
  let measuredAcked = 0;
  const latencies: number[] = [];
  let payloadBytes = 0;
  let payloads = 0;
  const start = performance.now();
  const measureFrom = start + input.warmupMs;
  const stopAt = measureFrom + input.durationMs;
  let counter = input.workerIndex * 1e12;
  const hex = Buffer.alloc(12);
  const stampId = (target: Buffer, offset: number) => {
    counter++;
    hex.write(counter.toString(16).padStart(12, '0').slice(-12), 'latin1');
    hex.copy(target, offset);
  };

  const runConnection = (ordinal: number) =>
    new Promise<void>((resolve) => {
      const kind = SIM_KINDS[ordinal % SIM_KINDS.length]!;
      const device = createDevice(kind, ordinal, { seed: 1, deviceIdPrefix: input.prefix, intervalMs: 200 });
      const templates: Template[] = [];
      for (let i = 0; i < TEMPLATES_PER_CONNECTION; i++) {
        const event = device.next();
        const payload = Buffer.from(JSON.stringify(event));
        payloadBytes += payload.length;
        payloads++;
        templates.push(publishTemplate(device.topic, payload, event.eventId));
      }
      const sentAt = new Float64Array(65536);
      let nextId = 1;
      let inflight = 0;
      let t = 0;
      let credit = 0;
      let ready = false;
      let finished = false;
      let pending: Buffer = Buffer.alloc(0);
      let pacer: NodeJS.Timeout | undefined;
      const socket: Socket = createConnection({ host: input.host, port: input.port, noDelay: true });
      const finish = () => {
        if (finished) return;
        finished = true;
        if (pacer) clearInterval(pacer);
        socket.destroy();
        resolve();
      };
      const pump = () => {
        if (!ready || finished) return;
        const now = performance.now();
        if (now >= stopAt) {
          if (inflight === 0) finish();
          return;
        }
        const room = input.inflight - inflight;
        let n = input.ratePerConnection > 0 ? Math.min(room, Math.floor(credit)) : room;
        if (n <= 0) return;
        if (input.ratePerConnection > 0) credit -= n;
        const batch: Buffer[] = [];
        while (n-- > 0) {
          const tpl = templates[t++ % templates.length]!;
          const packet = Buffer.allocUnsafe(tpl.packet.length);
          tpl.packet.copy(packet);
          const id = nextId;
          nextId = nextId === 65535 ? 1 : nextId + 1;
          packet[tpl.packetIdOffset] = id >> 8;
          packet[tpl.packetIdOffset + 1] = id & 0xff;
          stampId(packet, tpl.idTailOffset);
          sentAt[id] = now;
          inflight++;
          sent++;
          batch.push(packet);
        }
        socket.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
      };
      socket.on('connect', () => socket.write(connectPacket(`${input.prefix}-c${ordinal}`, input.credentials)));
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let off = 0;
        const now = performance.now();
        while (pending.length - off >= 2) {
          let len = 0;
          let mult = 1;
          let i = off + 1;
          let complete = false;
          while (i < pending.length) {
            const b = pending[i++]!;
            len += (b & 0x7f) * mult;
            mult *= 128;
            if ((b & 0x80) === 0) {
              complete = true;
              break;
            }
          }
          if (!complete || pending.length - i < len) break;
          const type = pending[off]! >> 4;
          if (type === 2) {
            if (pending[i + 1] !== 0) {
              errors.push(`CONNACK refused with code ${pending[i + 1]}`);
              finish();
              return;
            }
            ready = true;
          } else if (type === 4) {
            const id = (pending[i]! << 8) | pending[i + 1]!;
            inflight--;
            acked++;
            if (now >= measureFrom && now < stopAt) {
              measuredAcked++;
              latencies.push(now - sentAt[id]!);
            }
          }
          off = i + len;
        }
        pending = off === pending.length ? Buffer.alloc(0) : pending.subarray(off);
        pump();
      });
      socket.on('error', (err) => {
        if (errors.length < 5) errors.push(`connection ${ordinal}: ${err.message}`);
        finish();
      });
      socket.on('close', () => {
        if (!finished && performance.now() < stopAt && errors.length < 5) errors.push(`connection ${ordinal} closed by the server`);
        finish();
      });
      if (input.ratePerConnection > 0) {
        // Spread the connections' sends over the tick instead of bursting all at once.
        const tickMs = 50;
        pacer = setInterval(() => {
          credit = Math.min(credit + (input.ratePerConnection * tickMs) / 1000, input.inflight);
          pump();
        }, tickMs);
      }
      // Unacknowledged publishes after the end are given up on, not waited for forever.
      setTimeout(finish, stopAt - performance.now() + 10_000).unref();
    });

  const all: Promise<void>[] = [];
  for (let c = 0; c < input.count; c++) {
    all.push(runConnection(input.first + c));
    // Connect in small steps: a thousand simultaneous SYNs trip the listen backlog.
    if (c % 50 === 49) await sleep(20);
  }
  await Promise.all(all);
  return { acked, sent, measuredAcked, latencies: Float64Array.from(latencies), payloadBytes, payloads, errors };
}

if (!isMainThread && (workerData as { gatewayLoad?: boolean } | null)?.gatewayLoad === true) {
  const input = (workerData as { input: WorkerInput }).input;
  runWorker(input).then(
    (out) => parentPort!.postMessage(out, [out.latencies.buffer as ArrayBuffer]),
    (err: unknown) => parentPort!.postMessage({ acked: 0, sent: 0, measuredAcked: 0, latencies: new Float64Array(0), payloadBytes: 0, payloads: 0, errors: [String(err)] }),
  );
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs the load from `options.workers` worker threads and merges their figures. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const per = Math.ceil(options.connections / options.workers);
  const outputs = await Promise.all(
    Array.from({ length: options.workers }, (_, w) => {
      const first = w * per;
      const count = Math.max(0, Math.min(per, options.connections - first));
      const input: WorkerInput = { ...options, first, count, workerIndex: w };
      const worker = new Worker(new URL(import.meta.url), { workerData: { gatewayLoad: true, input } });
      return new Promise<WorkerOutput>((resolve, reject) => {
        worker.once('message', (out: WorkerOutput) => {
          resolve(out);
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    }),
  );
  const latencies = new Float64Array(outputs.reduce((n, o) => n + o.latencies.length, 0));
  let at = 0;
  for (const o of outputs) {
    latencies.set(o.latencies, at);
    at += o.latencies.length;
  }
  latencies.sort();
  const measuredAcked = outputs.reduce((n, o) => n + o.measuredAcked, 0);
  return {
    acked: outputs.reduce((n, o) => n + o.acked, 0),
    sent: outputs.reduce((n, o) => n + o.sent, 0),
    measuredAcked,
    measuredMs: options.durationMs,
    rate: measuredAcked / (options.durationMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length > 0 ? latencies[latencies.length - 1]! : NaN,
    payloadBytes: outputs.reduce((n, o) => n + o.payloadBytes, 0) / outputs.reduce((n, o) => n + o.payloads, 0),
    errors: outputs.flatMap((o) => o.errors),
  };
}
