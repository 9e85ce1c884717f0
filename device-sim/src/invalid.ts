// Deliberately invalid payloads, made from a valid event by one defect each, with the protocol rule the
// gateway must report for it. Fields are found through the protocol schemas, not hard-coded, so the
// defects follow the contract when it changes.
import { EVENT_SCHEMAS, MAX_PAYLOAD_BYTES, isEventKind } from '@city/protocol';
import { naiveLocalIso } from './clock.ts';
import type { SimEvent } from './device.ts';
import { Rng, stableUuid } from './rng.ts';

export const INVALID_DEFECTS = [
  'wrongType', 'missingField', 'outOfRange', 'naiveTime', 'garbageTime', 'oversizeString', 'notJson',
  'unknownField', 'unknownKind', 'deviceMismatch', 'oversizePayload',
] as const;
export type InvalidDefect = (typeof INVALID_DEFECTS)[number];

/**
 * Defects used unless others are asked for. Oversize payloads are left out: a gateway may drop the
 * connection for them (MQTT maximum packet size), which would disturb the rest of a run.
 */
export const DEFAULT_DEFECTS: readonly InvalidDefect[] = INVALID_DEFECTS.filter((d) => d !== 'oversizePayload');

export function isInvalidDefect(value: unknown): value is InvalidDefect {
  return typeof value === 'string' && (INVALID_DEFECTS as readonly string[]).includes(value);
}

export interface InvalidPayload {
  defect: InvalidDefect;
  payload: Buffer;
  /** The rule protocol's decodeEvent reports: type, required, maximum, eventTime, json, … */
  rule: string;
  /** JSON pointer of the offending field; '' for the whole payload. */
  path: string;
  /** Event id written in the payload: never the valid event's, so ledgers cannot mix them up. */
  eventId: string;
  /** One line for logs. */
  description: string;
}

interface SchemaNode {
  type?: string | string[];
  minimum?: number;
  maximum?: number;
  exclusiveMaximum?: number;
  maxLength?: number;
  properties?: Record<string, SchemaNode>;
  required?: string[];
}

type Json = Record<string, unknown>;
const ENVELOPE = new Set(['kind', 'eventId', 'deviceId', 'seq', 'dateObserved']);

interface Field {
  path: string[];
  node: SchemaNode;
  value: unknown;
}

function schemaOf(kind: string): SchemaNode {
  if (!isEventKind(kind)) throw new RangeError(`unknown kind ${kind}`);
  return EVENT_SCHEMAS[kind] as unknown as SchemaNode;
}

/** Leaf fields present in the event, nested objects included, with their schemas. */
function presentFields(event: Json, node: SchemaNode, prefix: string[] = []): Field[] {
  const out: Field[] = [];
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const value = event[name];
    if (value === undefined) continue;
    if (child.type === 'object' && typeof value === 'object' && value !== null) {
      out.push(...presentFields(value as Json, child, [...prefix, name]));
    } else {
      out.push({ path: [...prefix, name], node: child, value });
    }
  }
  return out;
}

function pointer(path: readonly string[]): string {
  return path.map((p) => `/${p}`).join('');
}

function setAt(event: Json, path: readonly string[], value: unknown): void {
  let target = event;
  for (const key of path.slice(0, -1)) target = target[key] as Json;
  const last = path[path.length - 1] as string;
  if (value === undefined) delete target[last];
  else target[last] = value;
}

function isNumeric(node: SchemaNode): boolean {
  return node.type === 'number' || node.type === 'integer';
}

function eventTimeMs(event: SimEvent): number {
  return typeof event.dateObserved === 'number' ? event.dateObserved : Date.parse(event.dateObserved);
}

function text(rng: Rng, minLength: number, seedText: string): string {
  const words = ['the', 'bin', 'near', 'bridge', 'is', 'full', 'again', 'and', 'smells', 'really', 'bad', 'please'];
  let s = seedText;
  while (s.length < minLength) s += `${s.length > 0 ? ' ' : ''}${rng.pick(words)}`;
  return s;
}

/**
 * A payload made invalid by `defect` from `valid` (which is left untouched), the rule decodeEvent will
 * report for it on the device's own topic, and the field at fault.
 */
export function makeInvalid(defect: InvalidDefect, rng: Rng, valid: SimEvent): InvalidPayload {
  const eventId = stableUuid('invalid', valid.eventId, defect, rng.uint32());
  const event = structuredClone(valid) as unknown as Json;
  event.eventId = eventId;
  const schema = schemaOf(valid.kind);
  const fields = presentFields(event, schema);
  const json = (rule: string, path: string, description: string): InvalidPayload => ({
    defect, payload: Buffer.from(JSON.stringify(event)), rule, path, eventId, description,
  });

  switch (defect) {
    case 'wrongType': {
      // Numbers and booleans sent as strings: the classic firmware bug.
      const candidates = fields.filter((f) => !ENVELOPE.has(f.path[0] as string) && (isNumeric(f.node) || f.node.type === 'boolean'));
      const f = candidates.length > 0 ? rng.pick(candidates) : (fields.find((x) => x.path[0] === 'seq') as Field);
      setAt(event, f.path, String(f.value));
      return json('type', pointer(f.path), `${pointer(f.path)} sent as a string`);
    }
    case 'missingField': {
      const required = fields.filter((f) => {
        const parent = f.path.length === 1 ? schema : schema.properties?.[f.path[0] as string];
        return parent?.required?.includes(f.path[f.path.length - 1] as string) === true;
      });
      const f = rng.pick(required);
      setAt(event, f.path, undefined);
      return json('required', pointer(f.path), `${pointer(f.path)} left out`);
    }
    case 'outOfRange': {
      const candidates = fields.filter((f) => !ENVELOPE.has(f.path[0] as string) && isNumeric(f.node));
      const f = rng.pick(candidates);
      const { node } = f;
      const value = f.value as number;
      const integer = node.type === 'integer';
      if (node.minimum !== undefined && rng.chance(0.4)) {
        // A sign error, or a sensor's "no reading" sentinel.
        const below = node.minimum === 0 ? -(Math.abs(value) + 1) : node.minimum - Math.max(1, Math.abs(node.minimum) * 0.01);
        setAt(event, f.path, integer ? Math.floor(below) : below);
        return json('minimum', pointer(f.path), `${pointer(f.path)} below ${node.minimum}`);
      }
      if (node.exclusiveMaximum !== undefined) {
        setAt(event, f.path, node.exclusiveMaximum + (integer ? rng.int(0, 20) : rng.range(0, 20)));
        return json('exclusiveMaximum', pointer(f.path), `${pointer(f.path)} not below ${node.exclusiveMaximum}`);
      }
      const max = node.maximum ?? Number.MAX_SAFE_INTEGER;
      // Ratios sent as percentages are the common real-world case.
      let above = max <= 1 ? Math.max(value * 100, max + 0.5) : max + Math.max(1, max * rng.range(0.01, 0.5));
      if (integer) above = Math.floor(above) + 1;
      setAt(event, f.path, above);
      return json('maximum', pointer(f.path), `${pointer(f.path)} above ${max}`);
    }
    case 'naiveTime': {
      event.dateObserved = naiveLocalIso(eventTimeMs(valid), rng.pick(['T', ' '] as const));
      return json('eventTime', '/dateObserved', 'local time without a UTC offset');
    }
    case 'garbageTime': {
      const ms = eventTimeMs(valid);
      const options: readonly unknown[] = [
        Math.floor(ms / 1000), // epoch seconds
        'yesterday',
        '',
        new Date(ms).toISOString().replace(/-\d\d-\d\dT\d\d:\d\d/, '-13-45T25:61'),
        naiveLocalIso(ms).replace(/^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d).*$/, '$3/$2/$1 $4'), // 14/03/2025 09:26
        '2150-01-01T00:00:00Z',
      ];
      event.dateObserved = rng.pick(options);
      return json('eventTime', '/dateObserved', `garbage time ${JSON.stringify(event.dateObserved)}`);
    }
    case 'oversizeString': {
      const texts = Object.entries(schema.properties ?? {}).filter(([, node]) => node.type === 'string' && node.maxLength !== undefined);
      if (texts.length > 0) {
        const [name, node] = rng.pick(texts);
        const limit = node.maxLength as number;
        const current = typeof event[name] === 'string' ? (event[name] as string) : '';
        event[name] = text(rng, limit + rng.int(1, 200), current).slice(0, limit + 200);
        return json('maxLength', `/${name}`, `/${name} longer than ${limit}`);
      }
      // Kinds without free text: an id past the 64 characters the id pattern allows.
      event.eventId = `${eventId}-${eventId}`.slice(0, rng.int(65, 73));
      return json('pattern', '/eventId', 'eventId longer than 64 characters');
    }
    case 'notJson': {
      const whole = JSON.stringify(event);
      const variant = rng.int(0, 3);
      let payload: Buffer;
      if (variant === 0) payload = Buffer.from(whole.slice(0, Math.floor(whole.length * rng.range(0.2, 0.95))));
      else if (variant === 1) payload = Buffer.from(`${valid.kind},${valid.deviceId},${valid.seq},${eventTimeMs(valid)}\n`);
      else if (variant === 2) payload = Buffer.from(`<event kind="${valid.kind}" id="${eventId}"/>`);
      else payload = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from(Array.from({ length: rng.int(8, 64) }, () => rng.int(0, 255)))]);
      return { defect, payload, rule: 'json', path: '', eventId, description: 'payload is not JSON' };
    }
    case 'unknownField': {
      const extras: readonly (readonly [string, unknown])[] = [
        ['firmwareVersion', '2.4.1'], ['rssi', -71], ['batteryVoltage', 3.71], ['debug', true], ['speedKmh', 42.5],
      ];
      const [name, value] = rng.pick(extras.filter(([n]) => schema.properties?.[n] === undefined));
      event[name] = value;
      return json('additionalProperties', `/${name}`, `unknown field ${name}`);
    }
    case 'unknownKind': {
      event.kind = rng.pick(['parking_sensor', 'smart_bin', 'noise_meter', 'drone']);
      return json('enum', '/kind', `unknown kind ${String(event.kind)}`);
    }
    case 'deviceMismatch': {
      // Claims another device's id on this device's topic.
      const id = valid.deviceId;
      const last = id.slice(-1);
      event.deviceId = `${id.slice(0, -1)}${last === '9' ? '8' : /\d/.test(last) ? String(Number(last) + 1) : 'x'}`;
      return json('topic', '/deviceId', `payload claims device ${String(event.deviceId)}`);
    }
    case 'oversizePayload': {
      event.padding = 'x'.repeat(MAX_PAYLOAD_BYTES + rng.int(1, 4096));
      return json('size', '', `payload over ${MAX_PAYLOAD_BYTES} bytes`);
    }
  }
}

/**
 * Spreads exactly `count` invalid payloads over a fleet: device ordinal -> (slot -> how many before that
 * slot's valid event). Devices take turns in a seeded order; slots are uniform in [0, slotsPerDevice).
 */
export function planInvalid(count: number, deviceCount: number, slotsPerDevice: number, seed: number): Map<number, Map<number, number>> {
  const plan = new Map<number, Map<number, number>>();
  if (count <= 0 || deviceCount <= 0) return plan;
  const rng = new Rng(seed, 'invalid-plan');
  const order = Array.from({ length: deviceCount }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const slots = Math.max(1, slotsPerDevice);
  for (let i = 0; i < count; i++) {
    const device = order[i % deviceCount] as number;
    const slot = rng.int(0, slots - 1);
    let perDevice = plan.get(device);
    if (perDevice === undefined) plan.set(device, (perDevice = new Map()));
    perDevice.set(slot, (perDevice.get(slot) ?? 0) + 1);
  }
  return plan;
}
