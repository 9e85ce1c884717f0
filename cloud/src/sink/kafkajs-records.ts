// kafkajs 2.2.4 decodes each record's timestamp and offset through its BigInt-backed Long (several
// objects per varint byte) and builds the headers object by spreading it once per header. This module
// puts an equivalent decoder in place of kafkajs's `record/v0/decoder.js` before kafkajs is loaded: the
// same record object, field for field, with plain numbers where a value fits in 53 bits (the stock code
// path otherwise), and a header name's text taken from an earlier record whose name had the same bytes.
// It stands in only for the kafkajs version it was checked against (the test decodes the same bytes
// with both). kafkajs loads its fetch decoders at the first fetch, so importing this before any consumer
// runs is enough; loaded later, with another kafkajs version, or with CITY_KAFKAJS_RECORDS=stock in the
// environment, it changes nothing.
import { createRequire, Module } from 'node:module';

const require = createRequire(import.meta.url);

/** The file kafkajs's record-batch decoder requires for each record. */
export const KAFKAJS_RECORD_DECODER = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');

// kafkajs's Long alone (it loads nothing else of kafkajs).
const Long = require('kafkajs/src/utils/long.js') as LongClass;
const LOG_APPEND_TIME = 1;

/** kafkajs's protocol Decoder, as far as a record needs it. */
interface Decoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readVarInt(): number;
  readVarLong(): { value: bigint };
  readVarIntString(): string | null;
  readVarIntBytes(): Buffer | null;
}

interface BatchContext {
  firstOffset?: string;
  firstTimestamp?: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: string;
}

type HeaderValue = Buffer | null | HeaderValue[];

interface LongClass {
  fromValue(value: string): { add(addend: bigint | number): { toString(): string } };
}

/**
 * A varlong (zigzag) as a number when it has at most 7 bytes (|value| < 2^48); otherwise undefined with
 * the decoder where it was, for kafkajs's own reader.
 */
function readSmallVarLong(decoder: Decoder): number | undefined {
  const buffer = decoder.buffer;
  let offset = decoder.offset;
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    const byte = buffer[offset++] as number;
    result += (byte & 0x7f) * scale;
    // Past the end the byte is undefined and ends the varint, as in kafkajs's reader.
    if (byte >= 0x80) {
      scale *= 128;
      continue;
    }
    decoder.offset = offset;
    return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
  }
  return undefined;
}

/**
 * `base + delta` as kafkajs's Long prints it: plain numbers while both and the sum are safe integers.
 * `base` is a batch's first offset or timestamp, which kafkajs gives as a Long's decimal text.
 */
function sum(base: string, delta: number | bigint): string {
  if (typeof delta === 'number') {
    const n = Number(base);
    const total = n + delta;
    if (Number.isSafeInteger(n) && Number.isSafeInteger(total)) return String(total);
  }
  return Long.fromValue(base).add(typeof delta === 'number' ? BigInt(delta) : delta).toString();
}

/** Header names kept by position, at most this many: a gateway's records carry the same names in the same order. */
const KEPT_NAMES = 16;
const names: { bytes: Buffer; text: string }[] = [];

/**
 * The name of the record's `i`th header, as kafkajs's readVarIntString reads it: the text of the name at
 * that position in an earlier record when the bytes are the same (no slice, no decoding), else decoded.
 */
function readHeaderName(decoder: Decoder, i: number): string | null {
  const at = decoder.offset;
  const length = decoder.readVarInt();
  const buffer = decoder.buffer;
  const from = decoder.offset;
  const end = from + length;
  if (length <= 0 || end > buffer.length) {
    decoder.offset = at;
    return decoder.readVarIntString();
  }
  decoder.offset = end;
  const kept = names[i];
  if (kept !== undefined && kept.bytes.length === length) {
    const bytes = kept.bytes;
    let j = 0;
    while (j < length && bytes[j] === buffer[from + j]) j++;
    if (j === length) return kept.text;
  }
  const text = buffer.toString('utf8', from, end);
  if (i < KEPT_NAMES) names[i] = { bytes: Buffer.from(buffer.subarray(from, end)), text };
  return text;
}

function decodeRecord(decoder: Decoder, batchContext: BatchContext = {}) {
  const { firstOffset, firstTimestamp, magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
  const attributes = decoder.readInt8();
  const delta = readSmallVarLong(decoder) ?? decoder.readVarLong().value;
  const timestamp = timestampType === LOG_APPEND_TIME && maxTimestamp ? maxTimestamp : sum(firstTimestamp as string, delta);
  const offset = sum(firstOffset as string, decoder.readVarInt());
  const key = decoder.readVarIntBytes();
  const value = decoder.readVarIntBytes();
  const count = decoder.readVarInt();
  if (count < -1) throw new RangeError(`Invalid array length ${count}`);
  // As kafkajs's reduce: a repeated header becomes an array of its values; a name is looked up with
  // the prototype chain (kafkajs's `obj[key] === undefined`), and set as an own property even for
  // __proto__ (the object literal it spreads into does so).
  const headers: Record<string, HeaderValue> = {};
  for (let i = 0; i < count; i++) {
    const name = String(readHeaderName(decoder, i));
    const header = decoder.readVarIntBytes();
    const previous = headers[name];
    const next = previous === undefined ? header : Array.isArray(previous) ? previous.concat([header]) : [previous, header];
    if (name === '__proto__') Object.defineProperty(headers, name, { value: next, writable: true, enumerable: true, configurable: true });
    else headers[name] = next;
  }
  return { magicByte, attributes, timestamp, offset, key, value, headers, isControlRecord: isControlBatch, batchContext };
}

/** Whether kafkajs in this process decodes records with this module's decoder. */
export function leanRecordDecoder(): boolean {
  return (require.cache[KAFKAJS_RECORD_DECODER]?.exports as unknown) === decodeRecord;
}

/** The kafkajs release whose record decoder this one matches. */
const KAFKAJS_VERSION = '2.2.4';

const installed = (require('kafkajs/package.json') as { version: string }).version;
if (installed === KAFKAJS_VERSION && process.env['CITY_KAFKAJS_RECORDS'] !== 'stock' && require.cache[KAFKAJS_RECORD_DECODER] === undefined) {
  const module = new Module(KAFKAJS_RECORD_DECODER);
  module.filename = KAFKAJS_RECORD_DECODER;
  module.exports = decodeRecord;
  module.loaded = true;
  require.cache[KAFKAJS_RECORD_DECODER] = module;
}

export { decodeRecord as kafkajsRecordDecoder };
