// Benchmark (not a test) for a design not built yet: the sink's per-record validation moved into DuckDB
// at the flush. It prices the step issue 12 names for the sink. The event schemas are rendered as one
// SQL verdict per kind, a prototype made only for this bench. The verdict must be sound: it may refuse
// a valid event (the JavaScript decoder then decides that row) but must never pass an invalid one.
// Measured in one run over the same texts, CPU per row:
//   - JavaScript: decodeEventText (JSON.parse + ajv), as the sink does per record today;
//   - DuckDB: from_json into the struct the flush already builds, alone and with the verdicts added;
//   - DuckDB: each kind parsed into its typed struct with the value tests only (ranges, lengths, patterns,
//     enums), which is not sound (a number sent as text is cast), to split the cost from type strictness.
// It also prints how many valid events the verdict refuses, and how many of makeInvalid's defective
// payloads it passes (that count must be 0).
//   node test/bench/validate-sql.ts [--events 200000] [--invalid 20000]
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { decodeEventText, EVENT_KINDS, EVENT_SCHEMAS, EVENT_TIME_MAX_MS, EVENT_TIME_MIN_MS, type EventKind } from '@city/protocol';
import { makeInvalid, Rng, type InvalidDefect } from '@city/device-sim';
import { sampleEvent } from '../support/lake.ts';

const { values } = parseArgs({ options: { events: { type: 'string' }, invalid: { type: 'string' } } });
const N = Number(values.events ?? 200_000);
const INVALID = Number(values.invalid ?? 20_000);
const HOUR = Date.UTC(2026, 10, 29, 6);

interface Node {
  type?: string | string[];
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: string[];
  const?: string;
  eventTime?: boolean;
}

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
/** The struct DuckDB parses an object into, every field kept as its JSON text (one parse of the object). */
const leaves = (names: Iterable<string>) => q(JSON.stringify(Object.fromEntries([...names].map((f) => [f, 'JSON']))));

/**
 * The verdict of one value against `node`, sound rather than complete. `j` is the value's JSON text
 * (NULL when absent); an object's fields are read from one from_json of it, each kept as JSON text, so
 * the tests below parse only the small texts of the leaves.
 */
function check(node: Node, j: string, parsed?: string): string {
  const type = `json_type(${j})`;
  const num = `TRY_CAST(${j} AS DOUBLE)`;
  const str = `(${j} ->> '$')`;
  const parts: string[] = [];
  if (node.eventTime === true) {
    // Epoch milliseconds in range, or RFC 3339 text with an offset that DuckDB reads the same way.
    const rfc = `regexp_full_match(${str}, '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})')`;
    const ms = `epoch_ms(TRY_CAST(${str} AS TIMESTAMPTZ))`;
    return `((${type} IN ('BIGINT', 'UBIGINT') AND ${num} BETWEEN ${EVENT_TIME_MIN_MS} AND ${EVENT_TIME_MAX_MS}) OR (${type} = 'VARCHAR' AND ${rfc} AND ${ms} BETWEEN ${EVENT_TIME_MIN_MS} AND ${EVENT_TIME_MAX_MS}))`;
  }
  const t = Array.isArray(node.type) ? node.type : [node.type];
  if (t.includes('object')) {
    const props = node.properties ?? {};
    parts.push(`${type} = 'OBJECT'`);
    const keys = `json_keys(${j})`;
    // No key but the schema's, none twice (DuckDB reads a repeated key's first value, JSON.parse its last).
    if (node.additionalProperties === false) parts.push(`list_has_all([${Object.keys(props).map(q).join(', ')}], ${keys})`);
    parts.push(`len(${keys}) = len(list_distinct(${keys}))`);
    const st = parsed ?? `from_json(${j}, ${leaves(Object.keys(props))})`;
    for (const [name, child] of Object.entries(props)) {
      const at = `(${st}).${ident(name)}`;
      const required = node.required?.includes(name) === true;
      parts.push(required ? `(${at} IS NOT NULL AND ${check(child, at)})` : `(${at} IS NULL OR ${check(child, at)})`);
    }
  } else if (t.includes('number') || t.includes('integer')) {
    // Integers as JSON integers only (1.0 is one to ajv: refused here, decided by the decoder).
    parts.push(t.includes('integer') ? `${type} IN ('BIGINT', 'UBIGINT')` : `${type} IN ('BIGINT', 'UBIGINT', 'DOUBLE')`);
    if (node.minimum !== undefined) parts.push(`${num} >= ${node.minimum}`);
    if (node.maximum !== undefined) parts.push(`${num} <= ${node.maximum}`);
    if (node.exclusiveMaximum !== undefined) parts.push(`${num} < ${node.exclusiveMaximum}`);
  } else if (t.includes('string')) {
    parts.push(`${type} = 'VARCHAR'`);
    if (node.minLength !== undefined) parts.push(`length(${str}) >= ${node.minLength}`);
    if (node.maxLength !== undefined) parts.push(`length(${str}) <= ${node.maxLength}`);
    if (node.pattern !== undefined) parts.push(`regexp_full_match(${str}, ${q(node.pattern.replace(/^\^/, '').replace(/\$$/, ''))})`);
    if (node.enum !== undefined) parts.push(`${str} IN (${node.enum.map(q).join(', ')})`);
    if (node.const !== undefined) parts.push(`${str} = ${q(node.const)}`);
  } else if (t.includes('boolean')) {
    parts.push(`${type} = 'BOOLEAN'`);
  } else {
    parts.push('false');
  }
  return `(${parts.join(' AND ')})`;
}

/** DuckDB's type for a schema node, for a typed from_json. */
function sqlType(node: Node): unknown {
  if (node.eventTime === true) return 'VARCHAR';
  const t = Array.isArray(node.type) ? node.type : [node.type];
  if (t.includes('object')) return Object.fromEntries(Object.entries(node.properties ?? {}).map(([k, v]) => [k, sqlType(v)]));
  if (t.includes('integer')) return 'BIGINT';
  if (t.includes('number')) return 'DOUBLE';
  if (t.includes('boolean')) return 'BOOLEAN';
  return 'VARCHAR';
}

/** The value tests alone on typed fields (no JSON type test, no key test): the part that is not type strictness. */
function checkTyped(node: Node, x: string): string {
  if (node.eventTime === true) return `(TRY_CAST(${x} AS BIGINT) BETWEEN ${EVENT_TIME_MIN_MS} AND ${EVENT_TIME_MAX_MS} OR epoch_ms(TRY_CAST(${x} AS TIMESTAMPTZ)) BETWEEN ${EVENT_TIME_MIN_MS} AND ${EVENT_TIME_MAX_MS})`;
  const t = Array.isArray(node.type) ? node.type : [node.type];
  const parts: string[] = [];
  if (t.includes('object')) {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const at = `${x}.${ident(name)}`;
      parts.push(node.required?.includes(name) === true ? `(${at} IS NOT NULL AND ${checkTyped(child, at)})` : `(${at} IS NULL OR ${checkTyped(child, at)})`);
    }
  } else if (t.includes('number') || t.includes('integer')) {
    if (node.minimum !== undefined) parts.push(`${x} >= ${node.minimum}`);
    if (node.maximum !== undefined) parts.push(`${x} <= ${node.maximum}`);
    if (node.exclusiveMaximum !== undefined) parts.push(`${x} < ${node.exclusiveMaximum}`);
  } else if (t.includes('string')) {
    if (node.minLength !== undefined) parts.push(`length(${x}) >= ${node.minLength}`);
    if (node.maxLength !== undefined) parts.push(`length(${x}) <= ${node.maxLength}`);
    if (node.pattern !== undefined) parts.push(`regexp_full_match(${x}, ${q(node.pattern.replace(/^\^/, '').replace(/\$$/, ''))})`);
    if (node.enum !== undefined) parts.push(`${x} IN (${node.enum.map(q).join(', ')})`);
    if (node.const !== undefined) parts.push(`${x} = ${q(node.const)}`);
  }
  return parts.length === 0 ? 'true' : `(${parts.join(' AND ')})`;
}

// ---- input: valid events of every kind, and defective ones made from them
const texts: { kind: EventKind; text: string }[] = [];
for (let i = 0; i < N; i++) {
  const kind = EVENT_KINDS[i % EVENT_KINDS.length] as EventKind;
  texts.push({ kind, text: JSON.stringify(sampleEvent(kind, i, { idPrefix: 'v', dateObserved: HOUR + (i % 3600) * 1000 })) });
}
const rng = new Rng(7);
const DEFECTS: InvalidDefect[] = ['wrongType', 'missingField', 'outOfRange', 'naiveTime', 'garbageTime', 'oversizeString', 'notJson', 'unknownField'];
const invalid: { kind: EventKind; text: string; defect: InvalidDefect }[] = [];
for (let i = 0; i < INVALID; i++) {
  const kind = EVENT_KINDS.filter((k) => k !== 'gateway_health')[i % (EVENT_KINDS.length - 1)] as EventKind;
  const valid = sampleEvent(kind, N + i, { idPrefix: 'x', dateObserved: HOUR }) as never;
  const defect = DEFECTS[i % DEFECTS.length] as InvalidDefect;
  const made = makeInvalid(defect, rng, valid);
  const text = made.payload.toString('utf8');
  // Only what the decoder refuses counts as invalid here.
  if (!decodeEventText(text, made.payload.length, { kind }).ok) invalid.push({ kind, text, defect });
}

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// ---- JavaScript, as the sink validates today
let t0 = cpu();
let ok = 0;
for (let round = 0; round < 2; round++) {
  ok = 0;
  if (round === 1) t0 = cpu();
  for (const { kind, text } of texts) if (decodeEventText(text, text.length, { kind }).ok) ok++;
}
const jsUs = ((cpu() - t0) * 1000) / N;

// ---- DuckDB
const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
const db = await instance.connect();
await db.run('CREATE TABLE e (kind VARCHAR, t VARCHAR, defect VARCHAR)');
const appender = await db.createAppender('e');
for (const { kind, text } of texts) {
  appender.appendVarchar(kind);
  appender.appendVarchar(text);
  appender.appendNull();
  appender.endRow();
}
for (const { kind, text, defect } of invalid) {
  appender.appendVarchar(kind);
  appender.appendVarchar(text);
  appender.appendVarchar(defect);
  appender.endRow();
}
appender.closeSync();
/** Every top-level field of every kind: the one struct each text is parsed into. */
const TOP = [...new Set(EVENT_KINDS.flatMap((k) => Object.keys((EVENT_SCHEMAS[k] as unknown as Node).properties ?? {})))];
const verdict = `CASE WHEN NOT json_valid(t) THEN false ${EVENT_KINDS.map((k) => `WHEN kind = ${q(k)} THEN coalesce(${check(EVENT_SCHEMAS[k] as unknown as Node, 't', 's')}, false)`).join(' ')} ELSE false END`;
/** The rows with their parse: `s` is the struct of JSON leaves. */
const parsedRows = (where: string) => `(SELECT kind, t, defect, from_json(t, ${leaves(TOP)}) AS s FROM e WHERE ${where})`;
// What the flush parses today: each text into a struct (here of every top-level field, as JSON).
const struct = `from_json(t, ${leaves(TOP)})`;
const timed = async (sql: string): Promise<{ us: number; rows: Record<string, unknown>[] }> => {
  await db.run(sql.replace('SELECT', 'SELECT /* warm */'));
  const t = cpu();
  const reader = await db.runAndReadAll(sql);
  return { us: ((cpu() - t) * 1000) / N, rows: reader.getRowObjects() as Record<string, unknown>[] };
};
const parseOnly = await timed(`SELECT count(${struct}) AS n FROM e WHERE defect IS NULL`);
const withVerdict = await timed(`SELECT count(s) AS n, count(*) FILTER (WHERE ${verdict}) AS passed FROM ${parsedRows('defect IS NULL')}`);
const verdictOnly = await timed(`SELECT count(*) FILTER (WHERE ${verdict}) AS passed FROM ${parsedRows('defect IS NULL')}`);
// One kind's rows parsed into its typed struct: the value tests without type strictness (not sound: a
// number sent as text is cast), to split the cost between the two.
const typedUs = await (async () => {
  let us = 0;
  for (const k of EVENT_KINDS) {
    const node = EVENT_SCHEMAS[k] as unknown as Node;
    const sql = `SELECT count(*) FILTER (WHERE ${checkTyped(node, 's')}) FROM (SELECT from_json(t, ${q(JSON.stringify(sqlType(node)))}) AS s FROM e WHERE defect IS NULL AND kind = ${q(k)})`;
    us += (await timed(sql)).us;
  }
  return us;
})();
// Texts that are not JSON fail the verdict's first test; the rest are checked apart (DuckDB may evaluate a
// JSON function before the test that guards it, and a text that is not JSON makes it throw).
const wrong = (
  await db.runAndReadAll(`WITH j AS MATERIALIZED (SELECT * FROM e WHERE defect IS NOT NULL AND json_valid(t)) SELECT defect, count(*) AS n FROM (SELECT *, from_json(t, ${leaves(TOP)}) AS s FROM j) WHERE ${verdict} GROUP BY defect ORDER BY defect`)
).getRowObjects();
const passedValid = Number(withVerdict.rows[0]?.['passed']);

console.log(`${N} valid events of ${EVENT_KINDS.length} kinds (${Math.round(texts.reduce((a, x) => a + x.text.length, 0) / N)} B each), ${invalid.length} defective ones the decoder refuses; DuckDB on 1 thread`);
console.log(`  JavaScript decodeEventText (JSON.parse + ajv)     ${jsUs.toFixed(2)} µs/row CPU (${ok} valid)`);
console.log(`  DuckDB from_json, the flush's parse               ${parseOnly.us.toFixed(2)} µs/row CPU`);
console.log(`  DuckDB from_json + the schemas' verdicts           ${withVerdict.us.toFixed(2)} µs/row CPU (verdicts add ${(withVerdict.us - parseOnly.us).toFixed(2)})`);
console.log(`  DuckDB the verdicts with their parse              ${verdictOnly.us.toFixed(2)} µs/row CPU`);
console.log(`  DuckDB typed from_json + value tests only (unsound) ${typedUs.toFixed(2)} µs/row CPU`);
console.log(`  valid events the verdict refuses (the decoder would decide them): ${N - passedValid} of ${N}`);
console.log(`  defective payloads the verdict passes (must be 0): ${wrong.length === 0 ? 0 : JSON.stringify(wrong, (_, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`);
console.log(`ratio DuckDB verdicts / JavaScript decode: ${(verdictOnly.us / jsUs).toFixed(2)}×`);
