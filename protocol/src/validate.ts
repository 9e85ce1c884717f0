// Runtime validation compiled once from the event schemas. Every problem is returned, each with the
// JSON pointer of the field and the rule it broke, so a dead letter says exactly what was wrong.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { protocolErrors } from './errors.ts';
import {
  EVENT_KINDS,
  EVENT_SCHEMAS,
  EVENT_TIME_MAX_MS,
  EVENT_TIME_MIN_MS,
  isEventKind,
  type CityEvent,
  type EventKind,
} from './schemas.ts';

/** Largest payload a device may send; larger ones are refused before parsing. */
export const MAX_PAYLOAD_BYTES = 16 * 1024;

export interface Problem {
  /** JSON pointer to the offending field ('' for the whole payload). */
  path: string;
  /** The rule broken: a JSON Schema keyword (type, required, maximum, maxLength, …) or eventTime, json, size. */
  rule: string;
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))?$/;

/**
 * Epoch milliseconds of an event time, or a reason it is not one.
 * Accepts RFC 3339 with Z or an offset, or integer epoch milliseconds.
 */
export function parseEventTime(value: unknown): { ms: number } | { error: string } {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return { error: 'epoch time must be whole milliseconds' };
    if (value >= 0 && value < 1e11) return { error: 'looks like epoch seconds; epoch milliseconds expected' };
    if (value < EVENT_TIME_MIN_MS || value > EVENT_TIME_MAX_MS) return { error: 'outside 2000-01-01..2100-01-01' };
    return { ms: value };
  }
  if (typeof value !== 'string') return { error: 'must be an RFC 3339 string or epoch milliseconds' };
  // Validation, then partitioning and row building read the same time in a row.
  if (value === lastTime.text) return lastTime.result;
  const result = parseTimeText(value);
  lastTime = { text: value, result };
  return result;
}
let lastTime: { text: string; result: { ms: number } | { error: string } } = { text: '', result: { error: '' } };

function parseTimeText(value: string): { ms: number } | { error: string } {
  const m = RFC3339.exec(value);
  if (!m) return { error: 'is not an RFC 3339 date-time' };
  if (m[8] === undefined) return { error: 'has no UTC offset: naive local times are not accepted' };
  // Computed from the captured fields rather than by Date.parse: this runs for every message.
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  const daysInMonth = month === 2 && (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 29 : DAYS_IN_MONTH[month - 1] ?? 0;
  // Leap seconds (:60) are not representable in epoch milliseconds.
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    return { error: 'is not a valid calendar date-time' };
  }
  let offsetMinutes = 0;
  if (m[10] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return { error: 'has an invalid UTC offset' };
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Fractions finer than a millisecond are truncated, as Date.parse does.
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(1, 4).padEnd(3, '0'));
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
  if (ms < EVENT_TIME_MIN_MS || ms > EVENT_TIME_MAX_MS) return { error: 'outside 2000-01-01..2100-01-01' };
  return { ms };
}

function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, coerceTypes: false, useDefaults: false });
  ajv.addVocabulary(['unit']);
  ajv.addKeyword({
    keyword: 'eventTime',
    schemaType: 'boolean',
    errors: true,
    validate: function eventTime(_schema: boolean, data: unknown): boolean {
      const parsed = parseEventTime(data);
      if ('ms' in parsed) return true;
      (eventTime as { errors?: Partial<ErrorObject>[] }).errors = [
        { keyword: 'eventTime', message: parsed.error, params: {} },
      ];
      return false;
    },
  });
  return ajv;
}

const ajv = createAjv();
const validators = Object.fromEntries(EVENT_KINDS.map((kind) => [kind, ajv.compile(EVENT_SCHEMAS[kind])])) as {
  [K in EventKind]: ValidateFunction;
};

/**
 * A validator compiled once from a JSON Schema. `unknownField` words an additional property
 * (default: as for events; options say "is not a known option").
 */
export function compileSchema<T>(schema: object, wording: { unknownField?: string } = {}): (value: unknown) => ValidationResult<T> {
  const validate = ajv.compile(schema);
  const unknownField = wording.unknownField ?? UNKNOWN_EVENT_FIELD;
  return (value) => (validate(value) ? { ok: true, value: value as T } : { ok: false, problems: toProblems(validate.errors, unknownField) });
}

const UNKNOWN_EVENT_FIELD = 'is not a field of this event kind';

function toProblems(errors: ErrorObject[] | null | undefined, unknownField = UNKNOWN_EVENT_FIELD): Problem[] {
  const problems: Problem[] = [];
  for (const e of errors ?? []) {
    let path = e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path = `${path}/${(e.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path = `${path}/${(e.params as { additionalProperty: string }).additionalProperty}`;
      message = unknownField;
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    }
    problems.push({ path, rule: e.keyword, message });
  }
  return problems;
}

/** Validates a decoded event of any kind; `expectedKind` (e.g. from the MQTT topic) must match when given. */
export function validateEvent(value: unknown, expectedKind?: EventKind): ValidationResult<CityEvent> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problems: [{ path: '', rule: 'type', message: 'must be a JSON object' }] };
  }
  const kind = (value as { kind?: unknown }).kind;
  if (!isEventKind(kind)) {
    const message = kind === undefined ? 'is required' : `must be one of ${EVENT_KINDS.join(', ')}`;
    return { ok: false, problems: [{ path: '/kind', rule: kind === undefined ? 'required' : 'enum', message }] };
  }
  const validate = validators[kind];
  const valid = validate(value);
  // The common answer without building an empty list of problems (this runs per record).
  if (valid && (expectedKind === undefined || kind === expectedKind)) return { ok: true, value: value as CityEvent };
  const problems = valid ? [] : toProblems(validate.errors);
  if (expectedKind !== undefined && kind !== expectedKind) {
    problems.push({ path: '/kind', rule: 'topic', message: `is ${kind} but the topic is for ${expectedKind}` });
  }
  return problems.length === 0 ? { ok: true, value: value as CityEvent } : { ok: false, problems };
}

/** Decodes and validates a raw payload (UTF-8 JSON) as received from a device. */
export function decodeEvent(
  payload: Uint8Array,
  expected: { kind?: EventKind; deviceId?: string } = {},
): ValidationResult<CityEvent> {
  if (payload.byteLength > MAX_PAYLOAD_BYTES) return tooLarge(payload.byteLength);
  return decodeEventText(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'), payload.byteLength, expected);
}

function tooLarge(byteLength: number): { ok: false; problems: Problem[] } {
  return { ok: false, problems: [{ path: '', rule: 'size', message: `payload is ${byteLength} bytes, limit ${MAX_PAYLOAD_BYTES}` }] };
}

/**
 * decodeEvent for a payload already decoded as UTF-8 (`byteLength` is its size in bytes), for a reader
 * that keeps the text too; `parsed` receives the JSON value, valid or not, when the text is JSON.
 */
export function decodeEventText(
  text: string,
  byteLength: number,
  expected: { kind?: EventKind; deviceId?: string } = {},
  parsed?: { value?: unknown },
): ValidationResult<CityEvent> {
  if (byteLength > MAX_PAYLOAD_BYTES) return tooLarge(byteLength);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [{ path: '', rule: 'json', message: `is not JSON: ${(err as Error).message}` }] };
  }
  if (parsed !== undefined) parsed.value = value;
  const result = validateEvent(value, expected.kind);
  if (expected.deviceId !== undefined && typeof value === 'object' && value !== null) {
    const deviceId = (value as { deviceId?: unknown }).deviceId;
    if (typeof deviceId === 'string' && deviceId !== expected.deviceId) {
      const problem = { path: '/deviceId', rule: 'topic', message: `is ${deviceId} but the topic belongs to ${expected.deviceId}` };
      return result.ok ? { ok: false, problems: [problem] } : { ok: false, problems: [...result.problems, problem] };
    }
  }
  return result;
}

/** The event, or a PROTO_INVALID_EVENT error naming every problem (for events this code builds itself). */
export function assertValidEvent(value: unknown, expectedKind?: EventKind): CityEvent {
  const result = validateEvent(value, expectedKind);
  if (!result.ok) throw protocolErrors.create('PROTO_INVALID_EVENT', describeProblems(result.problems));
  return result.value;
}

/** One line summarising the problems, for logs and dead-letter reasons. */
export function describeProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.path || '(payload)'} ${p.message} [${p.rule}]`).join('; ');
}
