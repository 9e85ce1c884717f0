// The README's processed column reference is the definitions' own text: every table, column, type and
// unit, in order. A definition change without a refreshed README fails here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROCESSED_TABLES } from './definitions.ts';
import { processedColumnsMarkdown, withColumnsDoc } from './columns-doc.ts';

const README = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');

describe('processed columns in the README', () => {
  it('match the definitions (refresh: node cloud/src/processing/columns-doc.ts --write)', () => {
    expect(withColumnsDoc(README)).toBe(README);
  });

  it('name every column of every table with its unit', () => {
    const doc = processedColumnsMarkdown();
    for (const t of PROCESSED_TABLES) {
      expect(doc).toContain(`**\`${t.name}\`**`);
      for (const c of t.schema.columns) expect(doc, `${t.name}.${c.name}`).toMatch(new RegExp(`\\| \`${c.name}\` \\| ${c.type}`));
    }
    expect(doc).toContain('| `pm25` | double |  | mean PM2.5 |'.replace('|  |', '| µg/m³ |'));
  });
});
