// Mergeable partial aggregates of one KPI window: sums, counts, min/max and distinct counts, kept so
// that merging partials of disjoint inputs gives what one pass over all the inputs gives.
import { eventTable, type CellValue, type EventKind } from '@city/protocol';
import { aqiCategory, aqiOfPm25, districtOf, type AggregateDefinition, type KpiDefinition, type ValueExpr } from './definitions.ts';

/** Aggregate name → value; null for a min/max/sum that has seen no value yet. */
export type PartialState = Record<string, number | null>;

/** PartialState state plus what only the producing side needs (distinct sets), never published. */
export interface Accumulator {
  partial: PartialState;
  distinct: Map<string, Set<string>>;
}

export function emptyPartial(d: KpiDefinition): PartialState {
  return Object.fromEntries(d.aggregates.map((a) => [a.name, isCount(a) ? 0 : null]));
}

const isCount = (a: AggregateDefinition) => a.fn === 'count' || a.fn === 'count_if' || a.fn === 'count_nonnull' || a.fn === 'count_distinct';

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

/** The group key of a row, or null when it has none (no location for a district key). */
export function keyOf(d: KpiDefinition, read: RowReader): string | null {
  if ('column' in d.key) {
    const v = read(d.key.column);
    return v === null || v === undefined ? null : String(v);
  }
  const lat = read(d.key.district.lat);
  const lon = read(d.key.district.lon);
  return districtOf(typeof lat === 'number' ? lat : null, typeof lon === 'number' ? lon : null);
}

export function accumulate(d: KpiDefinition, acc: Accumulator, read: RowReader): void {
  const p = acc.partial;
  for (const a of d.aggregates) {
    if (a.fn === 'count') {
      p[a.name] = (p[a.name] ?? 0) + 1;
      continue;
    }
    const v = read(a.column);
    if (v === null || v === undefined) continue;
    switch (a.fn) {
      case 'count_nonnull':
        p[a.name] = (p[a.name] ?? 0) + 1;
        break;
      case 'count_if':
        if (v === true) p[a.name] = (p[a.name] ?? 0) + 1;
        break;
      case 'count_distinct': {
        let set = acc.distinct.get(a.name);
        if (set === undefined) acc.distinct.set(a.name, (set = new Set()));
        set.add(String(v));
        p[a.name] = set.size;
        break;
      }
      case 'sum':
        if (typeof v === 'number') p[a.name] = (p[a.name] ?? 0) + v;
        break;
      case 'min':
        if (typeof v === 'number') p[a.name] = p[a.name] === null || p[a.name] === undefined ? v : Math.min(p[a.name]!, v);
        break;
      case 'max':
        if (typeof v === 'number') p[a.name] = p[a.name] === null || p[a.name] === undefined ? v : Math.max(p[a.name]!, v);
        break;
    }
  }
}

/** Merges partials of disjoint inputs (see count_distinct in definitions.ts for why summing is exact). */
export function mergePartials(d: KpiDefinition, parts: readonly PartialState[]): PartialState {
  const out = emptyPartial(d);
  for (const part of parts) {
    for (const a of d.aggregates) {
      const v = part[a.name];
      if (v === null || v === undefined) continue;
      const cur = out[a.name];
      if (a.fn === 'min') out[a.name] = cur === null || cur === undefined ? v : Math.min(cur, v);
      else if (a.fn === 'max') out[a.name] = cur === null || cur === undefined ? v : Math.max(cur, v);
      else out[a.name] = (cur ?? 0) + v;
    }
  }
  return out;
}

export type Values = Record<string, number | string | null>;

/** The finished figures of a partial. */
export function valuesOf(d: KpiDefinition, partial: PartialState): Values {
  const out: Values = {};
  for (const [name, expr] of Object.entries(d.values)) out[name] = evaluate(expr, partial);
  for (const [name, label] of Object.entries(d.labels ?? {})) {
    const v = out[label.aqiCategoryOf];
    out[name] = typeof v === 'number' ? aqiCategory(v) : null;
  }
  return out;
}

function evaluate(e: ValueExpr, p: PartialState): number | null {
  if ('agg' in e) return p[e.agg] ?? null;
  if ('const' in e) return e.const;
  if ('round' in e) {
    const v = evaluate(e.round, p);
    const f = 10 ** e.digits;
    return v === null ? null : Math.round(v * f) / f;
  }
  if ('aqiPm25' in e) {
    const v = evaluate(e.aqiPm25, p);
    return v === null ? null : aqiOfPm25(v);
  }
  const l = evaluate(e.left, p);
  const r = evaluate(e.right, p);
  if (l === null || r === null) return null;
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
