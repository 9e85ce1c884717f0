import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { PublishParser } from './parser.ts';

const reference = mqttPacket.parser;

function run(parser: { on(e: string, f: (x: unknown) => void): unknown; parse(b: Buffer): number }, chunks: Buffer[]) {
  const seen: unknown[] = [];
  parser.on('packet', (p) => seen.push({ ...(p as object) }));
  parser.on('error', (e) => seen.push({ error: (e as Error).message }));
  for (const chunk of chunks) parser.parse(chunk);
  return seen;
}

/** Cuts a byte stream into pieces at pseudo-random points (some empty-free, some one byte long). */
function cut(bytes: Buffer, seed: number): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  let s = seed;
  while (o < bytes.length) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (s % (s % 3 === 0 ? 3 : 700));
    out.push(Buffer.from(bytes.subarray(o, o + n)));
    o += n;
  }
  return out;
}

const stream = Buffer.concat([
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'veh-1', clean: true, keepalive: 30, username: 'veh-1', password: Buffer.from('secret-secret-secret') }),
  mqttPacket.generate({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'city/v1/veh-1/#', qos: 1 }] }),
  ...Array.from({ length: 60 }, (_, i) =>
    mqttPacket.generate({
      cmd: 'publish',
      topic: i % 7 === 0 ? 'city/v1/veh-1/vehicle/ünïcode' : `city/v1/veh-${i}/vehicle`,
      payload: Buffer.from(JSON.stringify({ i, fill: 'x'.repeat((i * 97) % 400) })),
      qos: (i % 3) as 0 | 1 | 2,
      retain: i % 5 === 0,
      dup: i % 3 !== 0 && i % 4 === 0,
      ...(i % 3 === 0 ? {} : { messageId: 1 + i * 1000 }),
    }),
  ),
  mqttPacket.generate({ cmd: 'publish', topic: 'city/v1/veh-1/vehicle', payload: Buffer.alloc(300_000, 7), qos: 1, messageId: 65535, retain: false, dup: false }),
  mqttPacket.generate({ cmd: 'publish', topic: 'city/v1/veh-1/vehicle', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }),
  mqttPacket.generate({ cmd: 'pingreq' }),
  mqttPacket.generate({ cmd: 'unsubscribe', messageId: 8, unsubscriptions: ['city/v1/veh-1/#'] }),
  mqttPacket.generate({ cmd: 'disconnect' }),
]);

describe('publish parser', () => {
  it('yields what mqtt-packet yields, packet for packet, however the stream is split', () => {
    const expected = run(reference(), [stream]);
    expect(expected).toHaveLength(67);
    expect(expected.some((p) => (p as { error?: string }).error !== undefined)).toBe(false);
    for (const seed of [1, 2, 3, 42, 1234]) {
      expect(run(new PublishParser(reference), cut(stream, seed))).toEqual(expected);
    }
    expect(run(new PublishParser(reference), [stream])).toEqual(expected);
  });

  it('fails where mqtt-packet fails, and a truncated packet id is an error rather than -1', () => {
    const cases: [string, Buffer, string][] = [
      ['QoS 3', Buffer.from([0x36, 4, 0, 1, 0x61, 0]), 'Packet must not have both QoS bits set to 1'],
      ['topic past the packet', Buffer.from([0x30, 3, 0, 5, 0x61]), 'Cannot parse topic'],
      ['no topic length', Buffer.from([0x30, 1, 0]), 'Cannot parse topic'],
      ['remaining length over 4 bytes', Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 'Invalid variable byte integer'],
      ['bad CONNECT flags (mqtt-packet decides)', Buffer.from([0x11, 0]), 'Invalid header flag bits, must be 0x0 for connect packet'],
    ];
    for (const [, bytes, message] of cases) {
      expect(run(new PublishParser(reference), [bytes])).toEqual([{ error: message }]);
    }
    // mqtt-packet reads a missing packet id as -1 and emits the packet.
    const noId = Buffer.from([0x32, 3, 0, 1, 0x61]);
    expect(run(new PublishParser(reference), [noId])).toEqual([{ error: 'Cannot parse messageId' }]);
  });

  it('drops what an error left and parses the next chunk afresh, as mqtt-packet does', () => {
    const good = mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, messageId: 3, retain: false, dup: false });
    const seen = run(new PublishParser(reference), [Buffer.concat([Buffer.from([0x36, 4, 0, 1, 0x61, 0]), good]), good]);
    expect(seen).toEqual([{ error: 'Packet must not have both QoS bits set to 1' }, ...run(reference(), [good])]);
  });
});
