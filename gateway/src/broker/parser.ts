// The MQTT parser aedes reads every connection with. PUBLISH packets (nearly all of the field load)
// are framed and decoded here, straight from the socket's chunks; every other packet is handed whole
// to an mqtt-packet parser of the connection's own, so CONNECT, SUBSCRIBE and the rest parse exactly
// as before. mqtt-packet keeps the bytes in a BufferList that copies a Buffer for each field it reads,
// and calls debug() about ten times per packet (each call allocates its argument array, enabled or
// not): ~3 kB of garbage per publish, two fifths of everything the gateway allocated per message.
import { EventEmitter } from 'node:events';
import mqttPacket from 'mqtt-packet';

type MqttParser = ReturnType<typeof mqttPacket.parser>;
interface ParserSettings {
  protocolVersion?: number;
}

/** What mqtt-packet (without MQTT 5 properties) makes of a PUBLISH: the same fields in the same order. */
export interface ParsedPublish {
  cmd: 'publish';
  retain: boolean;
  qos: 0 | 1 | 2;
  dup: boolean;
  length: number;
  topic: string;
  payload: Buffer;
  messageId?: number;
}

const PUBLISH = 3;
const MAX_LENGTH_BYTES = 4;

export class PublishParser extends EventEmitter {
  /** Set and read by aedes (its enqueue runs with the parser as `this`). */
  client: unknown = undefined;
  _queue: unknown[] | null = null;
  readonly settings: ParserSettings;
  private readonly original: (opt?: object) => MqttParser;
  private other: MqttParser | undefined;
  /** Bytes of an unfinished packet, and how long the whole packet is once its header is in (else 0). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private need = 0;
  private failed = false;

  constructor(original: (opt?: object) => MqttParser, settings: ParserSettings = {}) {
    super();
    this.original = original;
    this.settings = settings;
  }

  /** Parses what it can, emitting 'packet' for each complete one; returns the bytes left over. */
  parse(chunk: Buffer): number {
    let data = chunk;
    if (this.heldBytes > 0) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      // A large packet arriving in many reads is joined once, not once per read.
      if (this.heldBytes < this.need) return this.heldBytes;
      data = Buffer.concat(this.held, this.heldBytes);
      this.held = [];
      this.heldBytes = 0;
    }
    this.need = 0;
    this.failed = false;
    let o = 0;
    while (o < data.length) {
      // Fixed header: type and flags, then the remaining length (1–4 bytes, 7 bits each).
      let length = 0;
      let multiplier = 1;
      let i = o + 1;
      let complete = false;
      while (i < data.length && i - o - 1 < MAX_LENGTH_BYTES) {
        const byte = data[i++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 0x80;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (i - o - 1 >= MAX_LENGTH_BYTES) return this.fail(new Error('Invalid variable byte integer'));
        break;
      }
      const end = i + length;
      if (end > data.length) {
        this.need = end - o;
        break;
      }
      if (data[o]! >> 4 === PUBLISH && this.settings.protocolVersion !== 5) {
        const packet = this.publish(data, data[o]!, i, end, length);
        if (packet === undefined) return 0;
        this.emit('packet', packet);
      } else {
        this.other ??= this.connectOther();
        this.other.parse(data.subarray(o, end));
        if (this.failed) return 0;
      }
      o = end;
    }
    if (o < data.length) {
      // Copied: a view would keep the whole socket read alive until the packet's last byte arrives.
      const rest = Buffer.from(data.subarray(o));
      this.held = [rest];
      this.heldBytes = rest.length;
    }
    return this.heldBytes;
  }

  private publish(data: Buffer, header: number, start: number, end: number, length: number): ParsedPublish | undefined {
    const qos = (header >> 1) & 3;
    if (qos === 3) return void this.fail(new Error('Packet must not have both QoS bits set to 1'));
    if (start + 2 > end) return void this.fail(new Error('Cannot parse topic'));
    const topicEnd = start + 2 + ((data[start]! << 8) | data[start + 1]!);
    if (topicEnd > end) return void this.fail(new Error('Cannot parse topic'));
    const packet: ParsedPublish = {
      cmd: 'publish',
      retain: (header & 1) !== 0,
      qos: qos as 0 | 1 | 2,
      dup: (header & 8) !== 0,
      length,
      topic: data.toString('utf8', start + 2, topicEnd),
      payload: data,
    };
    let p = topicEnd;
    if (qos > 0) {
      if (p + 2 > end) return void this.fail(new Error('Cannot parse messageId'));
      packet.messageId = (data[p]! << 8) | data[p + 1]!;
      p += 2;
    }
    packet.payload = data.subarray(p, end);
    return packet;
  }

  /** The mqtt-packet parser for every other packet; what it emits is emitted from here. */
  private connectOther(): MqttParser {
    const other = this.original(this.settings);
    other.on('packet', (packet: mqttPacket.Packet) => this.emit('packet', packet));
    other.on('error', (err: unknown) => this.fail(err));
    return other;
  }

  /** As mqtt-packet does: the error is emitted and what was buffered is dropped. */
  private fail(err: unknown): 0 {
    this.failed = true;
    this.held = [];
    this.heldBytes = 0;
    this.need = 0;
    this.emit('error', err);
    return 0;
  }
}

/** Makes mqtt-packet's `parser()` (the one aedes calls per connection) return a PublishParser. */
export function parsePublishesDirectly(packets: typeof mqttPacket): void {
  const original = packets.parser;
  packets.parser = (opt?: object) => new PublishParser(original, opt) as unknown as MqttParser;
}
