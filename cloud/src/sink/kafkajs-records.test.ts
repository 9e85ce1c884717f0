import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KAFKAJS_RECORD_DECODER, kafkajsRecordDecoder } from './kafkajs-records.ts';

const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => { offset: number };

type RecordDecoderFn = (decoder: unknown, context?: object) => Record<string, unknown>;

/** kafkajs's own record decoder, compiled from its file whatever the module cache holds. */
function stockDecoder(): RecordDecoderFn {
  const module = new Module(KAFKAJS_RECORD_DECODER) as Module & { _compile(source: string, filename: string): void };
  module.filename = KAFKAJS_RECORD_DECODER;
  module.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(dirname(KAFKAJS_RECORD_DECODER));
  module._compile(readFileSync(KAFKAJS_RECORD_DECODER, 'utf8'), KAFKAJS_RECORD_DECODER);
  return module.exports as RecordDecoderFn;
}
const stock = stockDecoder();

function varint(n: bigint): number[] {
  let z = n >= 0n ? n << 1n : (-n << 1n) - 1n;
  const out: number[] = [];
  do {
    const byte = Number(z & 0x7fn);
    z >>= 7n;
    out.push(z > 0n ? byte | 0x80 : byte);
  } while (z > 0n);
  return out;
}

function bytes(value: Buffer | string | null): number[] {
  if (value === null) return varint(-1n);
  const b = Buffer.from(value);
  return [...varint(BigInt(b.length)), ...b];
}

interface Spec {
  timestampDelta: bigint;
  offsetDelta: number;
  key: Buffer | string | null;
  value: Buffer | string | null;
  /** null: a header count of -1. */
  headers: [string | null, Buffer | string | null][] | null;
}

function encode(spec: Spec): Buffer {
  const headers = spec.headers === null ? varint(-1n) : [...varint(BigInt(spec.headers.length)), ...spec.headers.flatMap(([k, v]) => [...bytes(k), ...bytes(v)])];
  return Buffer.from([0, ...varint(spec.timestampDelta), ...varint(BigInt(spec.offsetDelta)), ...bytes(spec.key), ...bytes(spec.value), ...headers]);
}

/** Every own key (in order), prototype and value, Buffers as hex: what a deep equality could miss. */
function shape(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `buffer:${value.toString('hex')}`;
  if (Array.isArray(value)) return value.map(shape);
  if (typeof value === 'function') return `function:${value.name}`;
  if (typeof value === 'object' && value !== null) {
    const proto = Object.getPrototypeOf(value) === Object.prototype ? 'Object' : String(Object.getPrototypeOf(value));
    return { proto, entries: Reflect.ownKeys(value).map((k) => [String(k), shape((value as Record<string | symbol, unknown>)[k])]) };
  }
  return value;
}

function both(spec: Spec, context: object): { lean: unknown; stock: unknown; offsets: [number, number] } {
  const buffer = encode(spec);
  const a = new Decoder(buffer);
  const b = new Decoder(buffer);
  return { lean: shape(kafkajsRecordDecoder(a as never, context)), stock: shape(stock(b, context)), offsets: [a.offset, b.offset] };
}

const BASE: Spec = { timestampDelta: 0n, offsetDelta: 0, key: 'dev-1', value: '{"a":1}', headers: [['gateway-id', 'gw-1']] };
const CONTEXT = { firstOffset: '1200', firstTimestamp: '1764547200000', magicByte: 2, isControlBatch: false, timestampType: 0, maxTimestamp: '1764547200999' };

describe("the sink's kafkajs record decoder", () => {
  it('decodes every record exactly as kafkajs 2.2.4 does, field for field', () => {
    const specs: Spec[] = [
      BASE,
      { ...BASE, key: null, value: null, headers: [] },
      { ...BASE, headers: null },
      { ...BASE, key: '', value: '' },
      { ...BASE, value: Buffer.from([0xff, 0xfe, 0x00, 0xc3]) },
      // Repeated headers become arrays; names the prototype chain knows are kafkajs's quirks, kept.
      { ...BASE, headers: [['a', '1'], ['b', '2'], ['a', '3'], ['a', '4'], ['b', null]] },
      { ...BASE, headers: [['__proto__', 'x'], ['constructor', 'y'], ['toString', 'z'], ['__proto__', 'w']] },
      { ...BASE, headers: [['2', 'x'], ['1', 'y'], ['', 'e'], [null, 'n'], ['null', 'm'], ['ü', Buffer.from([0x80])]] },
      // Deltas small and large, either sign; varlongs of 1 to 10 bytes.
      ...[1n, -1n, 63n, -64n, 64n, 1n << 20n, -(1n << 40n), (1n << 47n) - 1n, -(1n << 47n), 1n << 47n, 1n << 48n, -(1n << 50n), 1n << 62n, -(1n << 63n)].map((d) => ({ ...BASE, timestampDelta: d })),
      ...[1, -1, 127, 4095, 2 ** 31 - 1, -(2 ** 31)].map((d) => ({ ...BASE, offsetDelta: d })),
    ];
    const contexts = [
      CONTEXT,
      { ...CONTEXT, firstOffset: '0', firstTimestamp: '-1' },
      // Past 2^53: kafkajs's BigInt arithmetic, not doubles.
      { ...CONTEXT, firstOffset: '9007199254740991', firstTimestamp: '9007199254740990' },
      { ...CONTEXT, firstOffset: '9223372036854775000', firstTimestamp: '-9223372036854775808' },
      { ...CONTEXT, timestampType: 1 },
      { ...CONTEXT, timestampType: 1, maxTimestamp: '' },
      { ...CONTEXT, isControlBatch: true },
      { firstOffset: '5', firstTimestamp: '7' },
    ];
    let compared = 0;
    for (const spec of specs) {
      for (const context of contexts) {
        const { lean, stock: expected, offsets } = both(spec, context);
        expect(lean, JSON.stringify({ spec: { ...spec, timestampDelta: String(spec.timestampDelta) }, context })).toEqual(expected);
        expect(offsets[0]).toBe(offsets[1]);
        compared++;
      }
    }
    expect(compared).toBe(specs.length * contexts.length);
  });

  it('reads header names kept from earlier records only where their bytes are the same', () => {
    const names: Spec[] = [
      { ...BASE, headers: [['ab', '1'], ['event-id', '2']] },
      { ...BASE, headers: [['ac', '1'], ['event-id', '2']] },
      { ...BASE, headers: [['ac', '1'], ['event-ie', '2'], ['x', '3']] },
      { ...BASE, headers: [['é', '1'], ['event-id', '2']] },
      { ...BASE, headers: [['e\u0301', '1'], ['', '2']] },
      { ...BASE, headers: [['ab', '1'], ['event-id', '2']] },
    ];
    for (const spec of [...names, ...names.reverse()]) {
      const { lean, stock: expected } = both(spec, CONTEXT);
      expect(lean).toEqual(expected);
    }
  });

  it('reads a batch of records back to back, leaving the decoder where kafkajs does', () => {
    const records = [BASE, { ...BASE, timestampDelta: 1n << 52n, offsetDelta: 1 }, { ...BASE, key: null, offsetDelta: 2 }];
    const buffer = Buffer.concat(records.map(encode));
    const a = new Decoder(buffer);
    const b = new Decoder(buffer);
    for (let i = 0; i < records.length; i++) expect(shape(kafkajsRecordDecoder(a as never, CONTEXT))).toEqual(shape(stock(b, CONTEXT)));
    expect(a.offset).toBe(buffer.length);
    expect(b.offset).toBe(buffer.length);
  });

  it("stands in for kafkajs's decoder unless kafkajs has decoded a fetch already or stock is asked for", () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const probe = (imports: string[], env: NodeJS.ProcessEnv = {}) =>
      execFileSync(
        process.execPath,
        ['--input-type=module', '-e', `${imports.map((m) => `await import(${JSON.stringify(m)});`).join('')} const m = await import('./kafkajs-records.ts'); console.log(m.leanRecordDecoder());`],
        { cwd: here, env: { ...process.env, ...env }, encoding: 'utf8' },
      ).trim();
    expect(probe(['./kafkajs-records.ts', 'kafkajs'])).toBe('true');
    expect(probe(['./consumer.ts'])).toBe('true');
    // kafkajs loads its fetch decoders at the first fetch, not at import.
    expect(probe(['kafkajs'])).toBe('true');
    expect(probe(['kafkajs', 'kafkajs/src/protocol/recordBatch/v0/decoder.js'])).toBe('false');
    expect(probe(['./kafkajs-records.ts', 'kafkajs'], { CITY_KAFKAJS_RECORDS: 'stock' })).toBe('false');
  });
});
