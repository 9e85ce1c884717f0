// The README's column reference of the processed tables, rendered from their definitions so the two
// cannot drift: columns-doc.test.ts compares the README's block with this text. To refresh the block
// after a definition changed: node_modules/.bin/node cloud/src/processing/columns-doc.ts --write
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROCESSED_TABLES } from './definitions.ts';

export const DOC_START = '<!-- processed-columns: generated from cloud/src/processing/definitions.ts; do not edit -->';
export const DOC_END = '<!-- /processed-columns -->';

/** Units as the definitions write them (UCUM-like) and as a reader knows them. */
const UNITS: Readonly<Record<string, string>> = { Cel: '°C', 'ug/m3': 'µg/m³', By: 'bytes', 'km/h': 'km/h', 'm/s': 'm/s', mm: 'mm', min: 'minutes', s: 'seconds', UTC: 'UTC' };

const cell = (text: string): string => text.replaceAll('|', '\\|');

export function processedColumnsMarkdown(): string {
  const out: string[] = [DOC_START];
  for (const t of PROCESSED_TABLES) {
    const key = t.schema.columns.filter((c) => c.name !== 'is_final' && !c.nullable).map((c) => `\`${c.name}\``);
    out.push(
      '',
      `**\`${t.name}\`** — ${t.description}. Partitioned by \`event_date\`/\`event_hour\` of ${t.grain === 'day' ? 'the UTC day (`event_hour` 0)' : 'the hour'}; one row per ${key.join(' × ')}; built from ${t.sources.map((s) => `\`${s}\``).join(', ')}.`,
      '',
      '| column | type | unit | meaning, how it is computed |',
      '|---|---|---|---|',
      ...t.schema.columns.map((c) => `| \`${c.name}\` | ${c.type}${c.nullable ? '' : ', not null'} | ${c.unit === undefined ? '' : (UNITS[c.unit] ?? c.unit)} | ${cell(c.description ?? '')} |`),
    );
  }
  out.push('', DOC_END);
  return out.join('\n');
}

/** The README with its block replaced by the rendered one (the markers must be there once). */
export function withColumnsDoc(readme: string): string {
  const start = readme.indexOf(DOC_START);
  const end = readme.indexOf(DOC_END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${DOC_START} … ${DOC_END}`);
  return readme.slice(0, start) + processedColumnsMarkdown() + readme.slice(end + DOC_END.length);
}

if (process.argv[1] === import.meta.filename && process.argv.includes('--write')) {
  const path = join(import.meta.dirname, '..', '..', '..', 'README.md');
  writeFileSync(path, withColumnsDoc(readFileSync(path, 'utf8')));
}
