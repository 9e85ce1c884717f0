import { describe, expect, it } from 'vitest';
import { compatibilityPartitioner } from '@platformatic/kafka';
import { recordHeaders } from '@city/protocol';
import type { StoredRecord } from '../buffer/index.ts';
import { createMessageEncoder } from './messages.ts';

const text = (headers: Map<Buffer, Buffer>) => Object.fromEntries([...headers].map(([k, v]) => [k.toString('utf8'), v.toString('utf8')]));

describe('message encoder', () => {
  const record = (over: Partial<StoredRecord>): StoredRecord => ({
    id: 1,
    topic: 'city.vehicle.v1',
    key: 'bus-7',
    value: Buffer.from('{"eventId":"e-1"}'),
    receivedAt: 1_714_564_800_123,
    eventId: 'e-1',
    lane: 'telemetry',
    ...over,
  });

  it('writes the headers recordHeaders writes, in its order, for every combination', () => {
    const encode = createMessageEncoder('gw-ü-1');
    for (const eventId of ['e-1', 'ev-ß', null])
      for (const replayed of [false, true])
        for (const clockSynced of [undefined, true, false])
          for (const receivedAt of [1_714_564_800_123, 1_714_564_800_123, 1_714_564_800_124]) {
            const r = record({ eventId, receivedAt, ...(clockSynced === undefined ? {} : { clockSynced }) });
            const message = encode(r, replayed);
            const expected = recordHeaders({ gatewayId: 'gw-ü-1', receivedAt, eventId, replayed, ...(clockSynced === undefined ? {} : { clockSynced }) });
            expect(text(message.headers)).toEqual(expected);
            expect(Object.keys(text(message.headers))).toEqual(Object.keys(expected));
            expect(message.timestamp).toBe(BigInt(receivedAt));
          }
  });

  it('sends the key as UTF-8 bytes with the partitioner hash as partition, also for repeated and odd keys', () => {
    const encode = createMessageEncoder('gw');
    for (const key of ['bus-7', 'bus-7', '', '車両-7', 'x'.repeat(300)]) {
      const message = encode(record({ key }), false);
      expect(message.key).toEqual(Buffer.from(key, 'utf8'));
      expect(message.partition).toBe(compatibilityPartitioner({ topic: 't', value: Buffer.alloc(0) }, Buffer.from(key, 'utf8')));
      expect(message.topic).toBe('city.vehicle.v1');
      expect(message.value?.toString()).toBe('{"eventId":"e-1"}');
    }
  });
});
