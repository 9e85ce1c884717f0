// Microsoft Fabric Eventstream behind the live output port, through its Kafka endpoint (the successor
// of push and streaming datasets): SASL PLAIN with the user name `$ConnectionString` and the
// connection string as the password, TLS, no compression, the topic named by the string's EntityPath.
// Each row is one JSON record with its table name, keyed so a window's revisions stay in order.
// Before any consumer fetches: kafkajs then decodes records with the sink's decoder (see the module).
import '../sink/kafkajs-records.ts';
import { CompressionTypes, Kafka, logLevel, Partitioners, type KafkaConfig, type Producer } from 'kafkajs';
import type { Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { LiveOutput, OutputRow, OutputStats } from './output.ts';

export interface EventstreamEndpoint {
  brokers: string[];
  topic: string;
  /** kafkajs settings for the endpoint: TLS and SASL PLAIN. */
  kafka: Pick<KafkaConfig, 'ssl' | 'sasl'>;
}

/** Reads `Endpoint=sb://HOST/;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=TOPIC`. */
export function eventstreamEndpoint(connectionString: string): EventstreamEndpoint {
  const parts = new Map<string, string>();
  for (const piece of connectionString.split(';')) {
    const at = piece.indexOf('=');
    if (at > 0) parts.set(piece.slice(0, at).trim().toLowerCase(), piece.slice(at + 1).trim());
  }
  const endpoint = parts.get('endpoint');
  const entity = parts.get('entitypath');
  const missing = [endpoint === undefined ? 'Endpoint' : '', parts.has('sharedaccesskeyname') ? '' : 'SharedAccessKeyName', parts.has('sharedaccesskey') ? '' : 'SharedAccessKey', entity === undefined ? 'EntityPath' : ''].filter((x) => x !== '');
  if (missing.length > 0) throw cloudErrors.create('CLD_EVENTSTREAM', `the connection string lacks ${missing.join(', ')}`);
  const host = /^sb:\/\/([^/]+)\/?$/.exec(endpoint!)?.[1];
  if (host === undefined) throw cloudErrors.create('CLD_EVENTSTREAM', `Endpoint must look like sb://NAME.servicebus.windows.net/, got ${endpoint!}`);
  return { brokers: [`${host}:9093`], topic: entity!, kafka: { ssl: true, sasl: { mechanism: 'plain', username: '$ConnectionString', password: connectionString } } };
}

export interface EventstreamOptions {
  connectionString: string;
  /** Tests: another broker and plain settings instead of the endpoint's (the topic stays EntityPath). */
  override?: { brokers: string[]; kafka?: Pick<KafkaConfig, 'ssl' | 'sasl'> } | undefined;
  log?: Log | undefined;
}

export class EventstreamOutput implements LiveOutput {
  readonly name = 'fabric eventstream';
  readonly endpoint: EventstreamEndpoint;
  readonly #producer: Producer;
  readonly #log: Log;
  #queue: { table: string; row: OutputRow }[] = [];
  readonly #stats: OutputStats = { delivered: 0, dropped: 0, queued: 0, requests: 0, throttled: 0, retried: 0, failed: 0 };
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> = Promise.resolve();

  constructor(options: EventstreamOptions) {
    this.endpoint = eventstreamEndpoint(options.connectionString);
    this.#log = options.log ?? (() => undefined);
    const kafka = new Kafka({
      clientId: 'city-live-eventstream',
      brokers: options.override?.brokers ?? this.endpoint.brokers,
      ...(options.override === undefined ? this.endpoint.kafka : (options.override.kafka ?? {})),
      logLevel: logLevel.NOTHING,
    });
    this.#producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  }

  async start(): Promise<void> {
    await this.#producer.connect();
    this.#timer = setInterval(() => void this.flush(), 1_000);
    this.#timer.unref();
  }

  write(table: string, rows: readonly OutputRow[]): void {
    for (const row of rows) this.#queue.push({ table, row });
  }

  flush(): Promise<void> {
    this.#sending = this.#sending.then(() => this.#send());
    return this.#sending;
  }

  async #send(): Promise<void> {
    const batch = this.#queue.splice(0);
    if (batch.length === 0) return;
    this.#stats.requests++;
    try {
      await this.#producer.send({
        topic: this.endpoint.topic,
        acks: -1,
        // The Eventstream Kafka endpoint takes uncompressed batches.
        compression: CompressionTypes.None,
        messages: batch.map(({ table, row }) => ({
          key: table === 'alerts' ? String(row['alert_id']) : `${table}|${String(row['key'])}|${String(row['window_start'])}`,
          value: JSON.stringify({ table, ...row }),
        })),
      });
      this.#stats.delivered += batch.length;
    } catch (err) {
      // Put them back once; a second failure counts them as dropped.
      this.#stats.retried++;
      this.#log('warn', 'eventstream: send failed; retrying', { error: errorMessage(err) });
      try {
        await this.#producer.send({ topic: this.endpoint.topic, acks: -1, compression: CompressionTypes.None, messages: batch.map(({ table, row }) => ({ value: JSON.stringify({ table, ...row }) })) });
        this.#stats.delivered += batch.length;
      } catch (again) {
        this.#stats.failed += batch.length;
        this.#stats.dropped += batch.length;
        this.#log('error', 'eventstream: rows dropped', { rows: batch.length, error: errorMessage(again) });
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
    await this.#producer.disconnect();
  }

  stats(): OutputStats {
    return { ...this.#stats, queued: this.#queue.length };
  }
}

export function createEventstreamOutput(options: EventstreamOptions): EventstreamOutput {
  return new EventstreamOutput(options);
}
