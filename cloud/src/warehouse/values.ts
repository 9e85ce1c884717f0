// Values from PostgreSQL and PGlite in the query port's shape, so answers compare with DuckDB's: 64-bit
// integers and NUMERIC as numbers (strings past 2^53), timestamps as ISO 8601 UTC strings.

/** PostgreSQL type oids the warehouse returns. */
const INT8 = 20;
const NUMERIC = 1700;
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;

const int = (text: string): number | string => {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
};

/** Text timestamp → ISO; a zoneless one is UTC (every warehouse timestamp is a UTC instant). */
export function isoTimestamp(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(text.trim());
  if (m === null) return text;
  let zone = m[3] ?? 'Z';
  if (/^[+-]\d{2}$/.test(zone)) zone += ':00';
  const date = new Date(`${m[1]}T${(m[2] as string).replace(/(\.\d{3})\d+$/, '$1')}${zone}`);
  return Number.isNaN(date.getTime()) ? text : date.toISOString();
}

/** Text parsers by type oid, for pg's `types` and PGlite's `parsers`. */
export const VALUE_PARSERS: Readonly<Record<number, (text: string) => unknown>> = {
  [INT8]: int,
  [NUMERIC]: (text) => Number(text),
  [TIMESTAMP]: isoTimestamp,
  [TIMESTAMPTZ]: isoTimestamp,
};
