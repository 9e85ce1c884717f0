// Mergeable partial aggregates of one KPI window: sums, counts, min/max and distinct counts, kept so
// that merging partials of disjoint inputs gives what one pass over all the inputs gives. The row and
// value expressions are evaluated here as processing/sql.ts renders them (SQL null semantics).
import { eventTable, type CellValue, type EventKind } from '@city/protocol';
import {
  aggregatesOf,
  aqiCategory,
  aqiOfPm25,
  districtOf,
  EEA_LEVELS,
  eeaLevel,
  KEY_SEPARATOR,
  type AggregateDefinition,
  type InputDefinition,
  type KpiDefinition,
  type RowExpr,
  type ValueExpr,
} from './definitions.ts';

/** Aggregate name → value; null for a min/max/sum that has seen no value yet (min/max of text keep text). */
export type PartialState = Record<string, number | string | null>;

/** PartialState state plus what only the producing side needs (distinct sets), never published. */
export interface Accumulator {
  partial: PartialState;
  distinct: Map<string, Set<string>>;
}

const isCount = (a: AggregateDefinition) => a.fn === 'count' || a.fn === 'count_distinct';

export function emptyPartial(d: KpiDefinition): PartialState {
  return Object.fromEntries(aggregatesOf(d).map((a) => [a.name, isCount(a) ? 0 : null]));
}

export function newAccumulator(d: KpiDefinition): Accumulator {
  return { partial: emptyPartial(d), distinct: new Map() };
}

/** Reads a row's columns by name (the lake's column names). */
export type RowReader = (column: string) => CellValue | undefined;

const columnIndexes = new Map<EventKind, Map<string, number>>();
export function rowReader(kind: EventKind, row: readonly CellValue[]): RowReader {
  let index = columnIndexes.get(kind);
  if (index === undefined) {
    index = new Map(eventTable(kind).columns.map((c, i) => [c.name, i]));
    columnIndexes.set(kind, index);
  }
  const at = index;
  return (column) => {
    const i = at.get(column);
    return i === undefined ? undefined : row[i];
  };
}

type Scalar = number | string | boolean | null;

const asNumber = (v: Scalar): number | null => (typeof v === 'number' ? v : null);

/** NWS heat index as heatIndexSql computes it: below 80 °F the temperature itself. */
export function heatIndexC(tempC: number, rh: number): number {
  const t = tempC * 1.8 + 32;
  const h = rh * 100;
  if (t < 80) return tempC;
  const hi =
    -42.379 + 2.04901523 * t + 10.14333127 * h - 0.22475541 * t * h - 0.00683783 * t * t - 0.05481717 * h * h + 0.00122874 * t * t * h +
    0.00085282 * t * h * h - 0.00000199 * t * t * h * h;
  return (hi - 32) / 1.8;
}

export function evalRow(e: RowExpr, read: RowReader): Scalar {
  if ('col' in e) {
    const v = read(e.col);
    return v === undefined ? null : v;
  }
  if ('num' in e) return e.num;
  if ('str' in e) return e.str;
  if ('op' in e) {
    const l = asNumber(evalRow(e.left, read));
    const r = asNumber(evalRow(e.right, read));
    if (l === null || r === null) return null;
    return e.op === '+' ? l + r : e.op === '-' ? l - r : l * r;
  }
  if ('cmp' in e) {
    const l = evalRow(e.left, read);
    const r = evalRow(e.right, read);
    if (l === null || r === null) return null;
    return e.cmp === '=' ? l === r : e.cmp === '>=' ? l >= r : l <= r;
  }
  if ('and' in e) {
    let unknown = false;
    for (const x of e.and) {
      const v = evalRow(x, read);
      if (v === false) return false;
      if (v === null) unknown = true;
    }
    return unknown ? null : true;
  }
  if ('notNull' in e) return evalRow(e.notNull, read) !== null;
  if ('isTrue' in e) return evalRow(e.isTrue, read) === true;
  if ('coalesce' in e) {
    for (const x of e.coalesce) {
      const v = evalRow(x, read);
      if (v !== null) return v;
    }
    return null;
  }
  if ('lookup' in e) {
    const k = evalRow(e.lookup, read);
    return typeof k === 'string' && Object.hasOwn(e.table, k) ? e.table[k]! : null;
  }
  if ('district' in e) {
    const lat = read(e.district.lat);
    const lon = read(e.district.lon);
    return districtOf(typeof lat === 'number' ? lat : null, typeof lon === 'number' ? lon : null);
  }
  const t = asNumber(evalRow(e.heatIndex.tempC, read));
  const rh = asNumber(evalRow(e.heatIndex.rh, read));
  if (t === null) return null;
  // Below 80 °F the index is the temperature, humidity or not (as the SQL CASE).
  if (t * 1.8 + 32 < 80) return t;
  return rh === null ? null : heatIndexC(t, rh);
}

/** The input of a definition that reads `kind`. */
export function inputOf(d: KpiDefinition, kind: EventKind): InputDefinition | undefined {
  return d.inputs.find((i) => i.source === kind);
}

/** The group key of a row, or null when it has none (no location for a district key) or its input's filter drops it. */
export function keyOf(d: KpiDefinition, read: RowReader, input: InputDefinition = d.inputs[0]!): string | null {
  if (input.where !== undefined && evalRow(input.where, read) !== true) return null;
  const parts: string[] = [];
  for (const k of input.keys) {
    const v = evalRow(k, read);
    if (v === null) return null;
    parts.push(String(v));
  }
  return parts.join(KEY_SEPARATOR);
}

const less = (a: number | string, b: number | string) => (typeof a === typeof b ? a < b : String(a) < String(b));

export function accumulate(d: KpiDefinition, acc: Accumulator, read: RowReader, input: InputDefinition = d.inputs[0]!): void {
  const p = acc.partial;
  for (const a of input.aggregates) {
    if (a.where !== undefined && evalRow(a.where, read) !== true) continue;
    if (a.fn === 'count' && a.of === undefined) {
      p[a.name] = Number(p[a.name] ?? 0) + 1;
      continue;
    }
    const v = evalRow(a.of!, read);
    if (v === null) continue;
    const value = typeof v === 'boolean' ? Number(v) : v;
    const cur = p[a.name] ?? null;
    switch (a.fn) {
      case 'count':
        p[a.name] = Number(cur ?? 0) + 1;
        break;
      case 'count_distinct': {
        let set = acc.distinct.get(a.name);
        if (set === undefined) acc.distinct.set(a.name, (set = new Set()));
        set.add(String(value));
        p[a.name] = set.size;
        break;
      }
      case 'sum':
        if (typeof value === 'number') p[a.name] = Number(cur ?? 0) + value;
        break;
      case 'min':
        p[a.name] = cur === null || less(value, cur) ? value : cur;
        break;
      case 'max':
        p[a.name] = cur === null || less(cur, value) ? value : cur;
        break;
    }
  }
}

/** Merges partials of disjoint inputs (see count_distinct in definitions.ts for why summing is exact). */
export function mergePartials(d: KpiDefinition, parts: readonly PartialState[]): PartialState {
  const out = emptyPartial(d);
  const aggs = aggregatesOf(d);
  for (const part of parts) {
    for (const a of aggs) {
      const v = part[a.name];
      if (v === null || v === undefined) continue;
      const cur = out[a.name] ?? null;
      if (a.fn === 'min') out[a.name] = cur === null || less(v, cur) ? v : cur;
      else if (a.fn === 'max') out[a.name] = cur === null || less(cur, v) ? v : cur;
      else out[a.name] = Number(cur ?? 0) + Number(v);
    }
  }
  return out;
}

/** Whether a window has rows of the figure's first input (the processed table has a row for it). */
export function present(d: KpiDefinition, partial: PartialState): boolean {
  const first = d.inputs[0]?.aggregates[0];
  return first !== undefined && Number(partial[first.name] ?? 0) > 0;
}

export type Values = Record<string, Scalar>;

/** The finished figures of a partial. */
export function valuesOf(d: KpiDefinition, partial: PartialState): Values {
  const out: Values = {};
  for (const [name, expr] of Object.entries(d.values)) out[name] = evaluate(expr, partial);
  return out;
}

function evaluate(e: ValueExpr, p: PartialState): Scalar {
  if ('agg' in e) return p[e.agg] ?? null;
  if ('num' in e) return e.num;
  if ('round' in e) {
    const v = asNumber(evaluate(e.round, p));
    const f = 10 ** e.digits;
    // Half away from zero, as SQL's round.
    return v === null ? null : (Math.sign(v) * Math.round(Math.abs(v) * f)) / f;
  }
  if ('aqiPm25' in e) {
    const v = asNumber(evaluate(e.aqiPm25, p));
    return v === null ? null : aqiOfPm25(v);
  }
  if ('aqiCategory' in e) {
    const v = asNumber(evaluate(e.aqiCategory, p));
    return v === null ? null : aqiCategory(v);
  }
  if ('band' in e) {
    const v = asNumber(evaluate(e.band, p));
    if (v === null) return null;
    return e.bands.find((b) => b.upTo === null || v <= b.upTo)?.label ?? null;
  }
  if ('eeaBand' in e) {
    if (!(Number(evaluate(e.when, p) ?? 0) > 0)) return null;
    let level = 0;
    for (const [pollutant, x] of Object.entries(e.eeaBand)) level = Math.max(level, eeaLevel(pollutant as never, asNumber(evaluate(x, p))));
    return EEA_LEVELS[level] ?? null;
  }
  const l = asNumber(evaluate(e.left, p));
  const r = asNumber(evaluate(e.right, p));
  if (l === null || r === null) return null;
  if ('cmp' in e) return e.cmp === '>=' ? l >= r : l > r;
  switch (e.op) {
    case '+':
      return l + r;
    case '-':
      return l - r;
    case '*':
      return l * r;
    case '/':
      return r === 0 ? null : l / r;
  }
}

/** Window starts an event time falls in: one for tumbling windows, size / hop for hopping ones. */
export function windowStarts(d: KpiDefinition, eventMs: number): number[] {
  const size = d.bucket.sizeMs;
  const hop = d.bucket.hopMs ?? size;
  const last = Math.floor(eventMs / hop) * hop;
  const starts: number[] = [];
  for (let s = last; s > eventMs - size; s -= hop) starts.unshift(s);
  return starts;
}
