// Query results as an aligned text table, for the terminal.
import type { LakeValue, QueryResult } from '../ports/query/port.ts';

/** An aligned text table; numbers right-aligned, NULL shown as NULL. */
export function formatTable(result: QueryResult): string {
  const cell = (v: LakeValue | undefined): string =>
    v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const cells = result.rows.map((row) => result.columns.map((c) => cell(row[c]).replace(/[\r\n\t]/g, ' ')));
  const numeric = result.columns.map(
    (c) => result.rows.some((r) => typeof r[c] === 'number') && result.rows.every((r) => typeof r[c] === 'number' || r[c] === null),
  );
  const widths = result.columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] as string).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number)))
      .join(' | ')
      .trimEnd();
  const out = [line(result.columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line)];
  out.push(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})`);
  return `${out.join('\n')}\n`;
}
