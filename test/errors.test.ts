// Error catalogs are data: every code unique and prefixed by its package, every code raised somewhere
// in its package, and every code in the README's table with what to do about it.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorTableRows, protocolErrors, type ErrorCatalogView } from '@city/protocol';
import { gatewayErrors } from '@city/gateway';
import { cloudErrors } from '@city/cloud';
import { simErrors } from '@city/device-sim';
import { cityErrors } from '@city/deploy/city';
import { kafkaErrors } from '@city/deploy/kafka';

const ROOT = join(import.meta.dirname, '..');

/** Each catalog with the folder whose source must raise its codes. */
const CATALOGS: { errors: ErrorCatalogView; source: string }[] = [
  { errors: protocolErrors, source: 'protocol/src' },
  { errors: gatewayErrors, source: 'gateway/src' },
  { errors: cloudErrors, source: 'cloud/src' },
  { errors: simErrors, source: 'device-sim/src' },
  { errors: kafkaErrors, source: 'deploy' },
  { errors: cityErrors, source: 'deploy' },
];

function productSources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'));
}

describe('error catalogs', () => {
  it('have distinct prefixes and unique codes, each with a message and an action', () => {
    const prefixes = CATALOGS.map((c) => c.errors.prefix);
    expect(new Set(prefixes).size).toBe(prefixes.length);
    const codes = CATALOGS.flatMap((c) => c.errors.codes);
    expect(new Set(codes).size).toBe(codes.length);
    for (const { errors } of CATALOGS) {
      for (const code of errors.codes) {
        expect(code.startsWith(`${errors.prefix}_`), code).toBe(true);
        expect(errors.catalog[code]!.message.length, code).toBeGreaterThan(0);
        expect(errors.catalog[code]!.action.length, code).toBeGreaterThan(0);
      }
    }
  });

  it('raise every code somewhere in their own package (outside the catalog)', () => {
    const unused: string[] = [];
    for (const { errors, source } of CATALOGS) {
      const text = productSources(source)
        .filter((file) => !file.includes(`defineErrors('${errors.prefix}'`))
        .join('\n');
      for (const code of errors.codes) if (!text.includes(`'${code}'`)) unused.push(code);
    }
    expect(unused).toEqual([]);
  });

  it('are all in the README table with the catalog text (paste the expected rows to update it)', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const missing = CATALOGS.flatMap((c) => errorTableRows(c.errors)).filter((row) => !readme.includes(row));
    expect(missing).toEqual([]);
  });
});
