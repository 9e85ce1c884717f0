import { describe, expect, it } from 'vitest';
import {
  DEADLETTER_TABLE,
  EVENT_KINDS,
  EXAMPLES,
  KAFKA_TOPICS,
  MAX_PAYLOAD_BYTES,
  decodeEvent,
  eventRow,
  eventTable,
  exampleEvent,
  headersAsText,
  kindOfKafkaTopic,
  mqttTopic,
  parseEventTime,
  parseMqttTopic,
  partitionOf,
  validateEvent,
  type EventKind,
  type Problem,
} from './index.ts';

const problemsOf = (value: unknown, kind?: EventKind): Problem[] => {
  const result = validateEvent(value, kind);
  return result.ok ? [] : result.problems;
};

// A required numeric field and a required string field of every kind, to break on purpose.
const FIELDS: Record<EventKind, { number: string; text: string }> = {
  vehicle: { number: 'speed', text: 'routeId' },
  gps: { number: 'speed', text: 'deviceId' },
  weather: { number: 'windSpeed', text: 'deviceId' },
  air_quality: { number: 'pm25', text: 'deviceId' },
  traffic_camera: { number: 'occupancy', text: 'deviceId' },
  emergency: { number: 'unitsAssigned', text: 'subCategory' },
  phone: { number: 'batteryLevel', text: 'osVersion' },
  gateway_health: { number: 'cpuLoad', text: 'deviceId' },
};

describe.each(EVENT_KINDS)('%s events', (kind) => {
  const { number, text } = FIELDS[kind];

  it('accept the valid example', () => {
    expect(problemsOf(EXAMPLES[kind])).toEqual([]);
    expect(decodeEvent(Buffer.from(JSON.stringify(EXAMPLES[kind])), { kind, deviceId: EXAMPLES[kind].deviceId }).ok).toBe(true);
  });

  it('reject a wrong type', () => {
    expect(problemsOf({ ...EXAMPLES[kind], [number]: 'fast' })).toContainEqual({ path: `/${number}`, rule: 'type', message: expect.stringMatching(/number|integer/) });
  });

  it('reject a missing field', () => {
    const event: Record<string, unknown> = exampleEvent(kind);
    delete event.dateObserved;
    expect(problemsOf(event)).toEqual([{ path: '/dateObserved', rule: 'required', message: 'is required' }]);
  });

  it('reject an out-of-range value', () => {
    expect(problemsOf({ ...EXAMPLES[kind], [number]: 1e12 })).toContainEqual(expect.objectContaining({ path: `/${number}`, rule: 'maximum' }));
    expect(problemsOf({ ...EXAMPLES[kind], [number]: -1 })).toContainEqual(expect.objectContaining({ path: `/${number}`, rule: 'minimum' }));
  });

  it('reject bad timestamps', () => {
    for (const dateObserved of ['2026-11-29T08:15:00', '29/11/2026 08:15', '2026-02-30T08:15:00Z', 1_795_940_100, 'now']) {
      expect(problemsOf({ ...EXAMPLES[kind], dateObserved })).toEqual([
        expect.objectContaining({ path: '/dateObserved', rule: 'eventTime' }),
      ]);
    }
  });

  it('reject an oversize string', () => {
    expect(problemsOf({ ...EXAMPLES[kind], [text]: 'x'.repeat(600) })).toContainEqual(
      expect.objectContaining({ path: `/${text}`, rule: expect.stringMatching(/maxLength|pattern/) }),
    );
  });

  it('reject unknown fields and a location given as a string', () => {
    const problems = problemsOf({ ...EXAMPLES[kind], colour: 'red', location: '52.37,4.89' });
    expect(problems).toContainEqual(expect.objectContaining({ path: '/colour', rule: 'additionalProperties' }));
    expect(problems).toContainEqual(expect.objectContaining({ path: '/location', rule: 'type' }));
  });

  it('derive a table with typed columns and the gateway columns', () => {
    const table = eventTable(kind);
    const names = table.columns.map((c) => c.name);
    expect(names.slice(0, 4)).toEqual(['event_id', 'device_id', 'seq', 'date_observed']);
    expect(names.slice(-2)).toEqual(['gateway_id', 'received_at']);
    expect(table.columns.find((c) => c.name === 'date_observed')?.type).toBe('timestamp');
    expect(new Set(names).size).toBe(names.length);
    expect(names.every((n) => /^[a-z][a-z0-9_]*$/.test(n))).toBe(true);
    const row = eventRow(kind, EXAMPLES[kind], { gatewayId: 'gw-1', receivedAt: 1_795_940_101_000 });
    expect(row).toHaveLength(names.length);
    expect(row[names.indexOf('date_observed')]).toBe(parseEventTimeMs(EXAMPLES[kind].dateObserved));
  });
});

function parseEventTimeMs(value: string | number): number {
  const parsed = parseEventTime(value);
  if (!('ms' in parsed)) throw new Error(parsed.error);
  return parsed.ms;
}

describe('validation', () => {
  it('returns every problem at once, each with its path and rule', () => {
    const problems = problemsOf({ ...EXAMPLES.weather, temperature: 99, relativeHumidity: '80%', location: { lat: 91, lon: 4 } });
    expect(problems.map((p) => `${p.path} ${p.rule}`).sort()).toEqual(['/location/lat maximum', '/relativeHumidity type', '/temperature maximum']);
  });

  it('checks the kind against the topic and the device id against the topic', () => {
    expect(problemsOf(EXAMPLES.gps, 'vehicle')).toEqual([expect.objectContaining({ path: '/kind', rule: 'topic' })]);
    const result = decodeEvent(Buffer.from(JSON.stringify(EXAMPLES.gps)), { kind: 'gps', deviceId: 'someone-else' });
    expect(result.ok ? [] : result.problems).toEqual([expect.objectContaining({ path: '/deviceId', rule: 'topic' })]);
  });

  it('rejects unknown kinds, non-objects, non-JSON and oversize payloads', () => {
    expect(problemsOf({ ...EXAMPLES.gps, kind: 'drone' })).toEqual([expect.objectContaining({ path: '/kind', rule: 'enum' })]);
    expect(problemsOf([1, 2])).toEqual([expect.objectContaining({ path: '', rule: 'type' })]);
    const notJson = decodeEvent(Buffer.from('{"kind": "gps",'));
    expect(notJson.ok ? [] : notJson.problems).toEqual([expect.objectContaining({ rule: 'json' })]);
    const big = decodeEvent(Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 32));
    expect(big.ok ? [] : big.problems).toEqual([expect.objectContaining({ rule: 'size' })]);
  });

  it('accepts RFC 3339 with offsets and epoch milliseconds, and rejects naive or seconds', () => {
    expect(parseEventTime('2026-11-29T09:15:00+01:00')).toEqual({ ms: Date.UTC(2026, 10, 29, 8, 15) });
    expect(parseEventTime('2026-11-29T08:15:00.123456Z')).toEqual({ ms: Date.UTC(2026, 10, 29, 8, 15, 0, 123) });
    expect(parseEventTime(Date.UTC(2026, 10, 29))).toEqual({ ms: Date.UTC(2026, 10, 29) });
    expect(parseEventTime('2026-11-29T08:15:00')).toEqual({ error: expect.stringContaining('naive') });
    expect(parseEventTime(1_795_940_100)).toEqual({ error: expect.stringContaining('seconds') });
    expect(parseEventTime('1999-12-31T23:59:59Z')).toEqual({ error: expect.stringContaining('outside') });
  });

  it("reads date-times exactly as Date.parse does, and rejects the calendar's impossible ones", () => {
    // A fixed pseudo-random walk over dates, offsets and fractions, leap days included.
    let x = 12345;
    const next = (n: number) => (x = (x * 1103515245 + 12345) % 2 ** 31) % n;
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    for (let i = 0; i < 2000; i++) {
      const date = `${2000 + next(100)}-${pad(1 + next(12))}-${pad(1 + next(28))}T${pad(next(24))}:${pad(next(60))}:${pad(next(60))}`;
      const fraction = ['', '.5', '.123', '.987654321'][next(4)]!;
      const zone = ['Z', 'z', '+00:00', '-05:30', '+14:00', '-12:45'][next(6)]!;
      const text = `${date}${fraction}${zone}`;
      const expected = Date.parse(text.replace('z', 'Z'));
      expect(parseEventTime(text), text).toEqual(expected < Date.UTC(2000, 0, 1) || expected > Date.UTC(2100, 0, 1) ? { error: expect.stringContaining('outside') } : { ms: expected });
    }
    expect(parseEventTime('2028-02-29T12:00:00Z')).toEqual({ ms: Date.UTC(2028, 1, 29, 12) });
    for (const bad of ['2027-02-29T12:00:00Z', '2026-04-31T00:00:00Z', '2026-13-01T00:00:00Z', '2026-11-29T24:00:00Z', '2026-11-29T23:59:60Z']) {
      expect(parseEventTime(bad), bad).toEqual({ error: 'is not a valid calendar date-time' });
    }
    expect(parseEventTime('2026-11-29T10:00:00+24:00')).toEqual({ error: 'has an invalid UTC offset' });
  });
});

describe('topics', () => {
  it('round-trips MQTT topics and confines a device to its own prefix', () => {
    expect(parseMqttTopic(mqttTopic('bus-017', 'vehicle'))).toEqual({ ok: true, deviceId: 'bus-017', kind: 'vehicle' });
    expect(parseMqttTopic('city/v1/devices/bus-017/vehicle/extra').ok).toBe(false);
    expect(parseMqttTopic('city/v1/devices/bus-017/drone')).toMatchObject({ ok: false, deviceId: 'bus-017' });
    expect(parseMqttTopic('other/topic')).toMatchObject({ ok: false, deviceId: undefined });
  });

  it('maps each kind to its own Kafka topic and back', () => {
    expect(new Set(Object.values(KAFKA_TOPICS)).size).toBe(EVENT_KINDS.length);
    for (const kind of EVENT_KINDS) expect(kindOfKafkaTopic(KAFKA_TOPICS[kind])).toBe(kind);
  });

  it('partitions by UTC date and hour of the event time', () => {
    expect(partitionOf(Date.UTC(2026, 10, 29, 23, 59))).toEqual({ event_date: '2026-11-29', event_hour: 23 });
    expect(DEADLETTER_TABLE.partitionKeys.map((c) => c.name)).toEqual(['event_date', 'event_hour']);
  });
});

describe('headersAsText', () => {
  it('gives every header as text, names in the order sort() gives them, a repeated header its last value', () => {
    const names = ['gateway-id', 'b', 'A', '10', '9', 'é', 'event-id', 'gateway-received-at', 'Z', ''];
    const headers = Object.fromEntries(names.map((n, i) => [n, i % 2 === 0 ? Buffer.from(`v${i}`) : `v${i}`]));
    const text = headersAsText({ ...headers, r: [Buffer.from('first'), 'last'], gone: undefined });
    // The raw zone keeps JSON.stringify of it: the same text as filling an object in sort() order.
    const expected: Record<string, string> = {};
    for (const n of [...names, 'r'].sort()) expected[n] = n === 'r' ? 'last' : `v${names.indexOf(n)}`;
    expect(JSON.stringify(text)).toBe(JSON.stringify(expected));
    expect(Object.keys(text).filter((k) => !/^\d+$/.test(k))).toEqual([...names, 'r'].filter((k) => !/^\d+$/.test(k)).sort());
    expect(headersAsText(undefined)).toEqual({});
  });
});
