// The error catalog is data: every code is prefixed, has an action, is raised somewhere in the package,
// and the package raises no code the catalog lacks.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cloudErrors } from './errors.ts';

const SRC = import.meta.dirname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('cloud error catalog', () => {
  const files = sources(SRC).filter((f) => relative(SRC, f) !== 'errors.ts');
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  // errors.ts itself raises the lifecycle's three codes.
  const own = readFileSync(join(SRC, 'errors.ts'), 'utf8').slice(readFileSync(join(SRC, 'errors.ts'), 'utf8').indexOf('export const lifecycleErrors'));

  it('has prefixed codes, each with a message and an action', () => {
    expect(cloudErrors.codes.length).toBeGreaterThan(10);
    for (const code of cloudErrors.codes) {
      expect(code).toMatch(/^CLD_[A-Z_]+$/);
      const spec = cloudErrors.catalog[code];
      expect(spec.message.length, code).toBeGreaterThan(5);
      expect(spec.action.length, code).toBeGreaterThan(5);
    }
  });

  it('raises every code it lists, and only those', () => {
    const used = new Set([...`${text}\n${own}`.matchAll(/'(CLD_[A-Z_]+)'/g)].map((m) => m[1]));
    expect([...cloudErrors.codes].filter((c) => !used.has(c))).toEqual([]);
    expect([...used].filter((c) => !(cloudErrors.codes as readonly string[]).includes(c as string))).toEqual([]);
  });

  it('marks bad input as usage errors (exit 2)', () => {
    for (const code of ['CLD_USAGE', 'CLD_INVALID_OPTIONS', 'CLD_NAMED_QUERY'] as const) expect(cloudErrors.catalog[code].usage, code).toBe(true);
  });
});
