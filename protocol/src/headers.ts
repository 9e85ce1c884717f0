// Kafka record headers: the gateway writes them, the sink and every tool read them, only through these.
import { SCHEMA_VERSION } from './schemas.ts';
import { parseEventTime, type Problem } from './validate.ts';

/** Header names on every record the gateway forwards. */
export const HEADERS = {
  gatewayId: 'gateway-id',
  receivedAt: 'gateway-received-at',
  schemaVersion: 'schema-version',
  /** The event's eventId; absent on dead letters that have none. */
  eventId: 'event-id',
  /** '1' on records sent as backlog after an outage or a restart. */
  replayed: 'replayed',
  /** '1' or '0': whether the gateway's clock was synchronised when it stamped gateway-received-at; absent = unknown. */
  clockSynced: 'gateway-clock-synced',
} as const;

/** What the gateway says of a record it forwards. */
export interface RecordMeta {
  gatewayId: string;
  /** Gateway receive time, epoch ms. */
  receivedAt: number;
  eventId: string | null;
  /** Sent as backlog (after an outage or a restart). */
  replayed?: boolean;
  /** Whether the receive time was stamped by a synchronised clock; absent = unknown. */
  clockSynced?: boolean;
}

/** The headers of a forwarded record (string values, as Kafka clients take them). */
export function recordHeaders(meta: RecordMeta): Record<string, string> {
  const headers: Record<string, string> = {
    [HEADERS.gatewayId]: meta.gatewayId,
    [HEADERS.receivedAt]: String(meta.receivedAt),
    [HEADERS.schemaVersion]: String(SCHEMA_VERSION),
  };
  if (meta.eventId !== null) headers[HEADERS.eventId] = meta.eventId;
  if (meta.replayed === true) headers[HEADERS.replayed] = '1';
  if (meta.clockSynced !== undefined) headers[HEADERS.clockSynced] = meta.clockSynced ? '1' : '0';
  return headers;
}

/** Headers as Kafka clients hand them out: a value, or several when the header repeats. */
export type KafkaHeaders = { readonly [name: string]: Buffer | string | readonly (Buffer | string)[] | undefined };

/** A header value's bytes as text: UTF-8, invalid bytes replaced. */
export type HeaderDecode = (name: string, value: Buffer) => string;

const utf8: HeaderDecode = (_name, value) => value.toString('utf8');

/** One header as text; a repeated header's last value wins (as Kafka's own clients read them). */
export function headerText(headers: KafkaHeaders | undefined, name: string, decode: HeaderDecode = utf8): string | undefined {
  const raw = headers?.[name];
  const value = Array.isArray(raw) ? raw[raw.length - 1] : (raw as Buffer | string | undefined);
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : decode(name, value);
}

/** Every header as text, names sorted (the raw zone keeps them so); `decode` may keep texts it has decoded. */
export function headersAsText(headers: KafkaHeaders | undefined, decode: HeaderDecode = utf8): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  // A record carries a handful of headers: an insertion sort (code-unit order, as sort() has it) without
  // the work arrays Array.prototype.sort allocates, once per record.
  const names = Object.keys(headers);
  for (let i = 1; i < names.length; i++) {
    const name = names[i] as string;
    let j = i - 1;
    for (; j >= 0 && (names[j] as string) > name; j--) names[j + 1] = names[j] as string;
    names[j + 1] = name;
  }
  for (const name of names) {
    const value = headerText(headers, name, decode);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** What a reader learns from a record's headers; fields are absent where a header is missing or bad. */
export interface ReadMeta {
  gatewayId?: string;
  receivedAt?: number;
  schemaVersion?: string;
  eventId?: string;
  replayed: boolean;
  /** From gateway-clock-synced; absent when the header is missing or neither '1' nor '0'. */
  clockSynced?: boolean;
}

const EPOCH_MS = /^\d{1,16}$/;

/**
 * Reads the gateway's headers. With `require`, what an event record must carry is checked and each
 * missing or wrong header becomes a problem (path `headers/<name>`, rule `header`); otherwise only a
 * present but malformed receive time is ignored silently.
 */
export function readRecordHeaders(
  headers: KafkaHeaders | undefined,
  options: { require: boolean; reader?: string },
  problems: Problem[] = [],
): ReadMeta {
  const meta: ReadMeta = { replayed: headerText(headers, HEADERS.replayed) === '1' };
  const clock = headerText(headers, HEADERS.clockSynced);
  if (clock === '1' || clock === '0') meta.clockSynced = clock === '1';
  const gatewayId = requiredHeader(headers, HEADERS.gatewayId, options.require, problems);
  if (gatewayId !== undefined) meta.gatewayId = gatewayId;
  const received = requiredHeader(headers, HEADERS.receivedAt, options.require, problems);
  if (received !== undefined) {
    // Receive times follow the event-time rules: whole epoch milliseconds within 2000..2100.
    const parsed = EPOCH_MS.test(received) ? parseEventTime(Number(received)) : { error: 'must be epoch milliseconds as a decimal string' };
    if ('ms' in parsed) meta.receivedAt = parsed.ms;
    else if (options.require) problems.push({ path: `headers/${HEADERS.receivedAt}`, rule: 'header', message: `${JSON.stringify(received)} ${parsed.error}` });
  }
  const version = requiredHeader(headers, HEADERS.schemaVersion, options.require, problems);
  if (version !== undefined) {
    meta.schemaVersion = version;
    if (options.require && version !== String(SCHEMA_VERSION)) {
      problems.push({ path: `headers/${HEADERS.schemaVersion}`, rule: 'header', message: `is ${version} but ${options.reader ?? 'this reader'} reads version ${SCHEMA_VERSION}` });
    }
  }
  const eventId = requiredHeader(headers, HEADERS.eventId, options.require, problems);
  if (eventId !== undefined) meta.eventId = eventId;
  return meta;
}

/** A header an event record must carry; missing or empty is a problem when `require` (a plain function: this runs per record). */
function requiredHeader(headers: KafkaHeaders | undefined, name: string, require: boolean, problems: Problem[]): string | undefined {
  const value = headerText(headers, name);
  if (value === undefined || value === '') {
    if (require) problems.push({ path: `headers/${name}`, rule: 'header', message: 'is missing' });
    return undefined;
  }
  return value;
}
