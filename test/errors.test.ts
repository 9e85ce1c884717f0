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
import { imageErrors } from '@city/deploy/image';
import { cdkErrors } from '@city/deploy/aws';
import { packageErrors } from '@city/deploy/gateway-package';

const ROOT = join(import.meta.dirname, '..');

/** Each catalog with the folder whose source must raise its codes. */
const CATALOGS: { errors: ErrorCatalogView; source: string }[] = [
  { errors: protocolErrors, source: 'protocol/src' },
  { errors: gatewayErrors, source: 'gateway/src' },
  { errors: cloudErrors, source: 'cloud/src' },
  { errors: simErrors, source: 'device-sim/src' },
  { errors: kafkaErrors, source: 'deploy' },
  { errors: cityErrors, source: 'deploy' },
  { errors: imageErrors, source: 'deploy' },
  { errors: cdkErrors, source: 'deploy' },
  { errors: packageErrors, source: 'deploy' },
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
      // The catalog itself does not count: only what stands outside its defineErrors(…) call.
      const text = productSources(source)
        .map((file) => {
          const at = file.indexOf(`defineErrors('${errors.prefix}'`);
          return at === -1 ? file : file.slice(0, at) + file.slice(file.indexOf('\n});', at));
        })
        .join('\n');
      for (const code of errors.codes) if (!text.includes(`'${code}'`)) unused.push(code);
    }
    expect(unused).toEqual([]);
  });

  it('raise no code their catalog lacks, and fake no code of another library', () => {
    const strays: string[] = [];
    for (const { errors, source } of CATALOGS) {
      const known = new Set<string>(errors.codes);
      for (const file of productSources(source)) {
        for (const m of file.matchAll(new RegExp(`\\.create\\(\\s*'(${errors.prefix}_[A-Z0-9_]+)'`, 'g'))) if (!known.has(m[1]!)) strays.push(m[1]!);
        // e.g. Object.assign(new Error(…), { code: 'SQLITE_CORRUPT' }) to reach another library's error path
        for (const m of file.matchAll(/\bcode:\s*'([A-Z][A-Z0-9_]+)'/g)) if (!m[1]!.startsWith(`${errors.prefix}_`)) strays.push(`${source}: faked ${m[1]}`);
      }
    }
    expect(strays).toEqual([]);
  });

  it('mark bad command lines and options as usage errors (exit 2)', () => {
    const usage = CATALOGS.flatMap((c) => c.errors.codes.filter((code) => /_(USAGE|BAD_FLAG|INVALID_OPTIONS?|OPTIONS_INVALID|CONFIG_FILE)$/.test(code)));
    expect(usage.length).toBeGreaterThan(8);
    for (const code of usage) {
      const catalog = CATALOGS.find((c) => c.errors.codes.includes(code))!.errors.catalog;
      expect(catalog[code]!.usage, code).toBe(true);
    }
  });

  it('are all in the README table with the catalog text (paste the expected rows to update it)', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const missing = CATALOGS.flatMap((c) => errorTableRows(c.errors)).filter((row) => !readme.includes(row));
    expect(missing).toEqual([]);
  });
});
