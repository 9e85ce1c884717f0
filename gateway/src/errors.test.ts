import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatewayErrors } from './errors.ts';

/** The gateway's own source files, tests left out. */
function sources(dir = import.meta.dirname): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && entry.name !== 'errors.ts' ? [path] : [];
  });
}

describe('error catalog', () => {
  it('has codes that are prefixed GW_, each with a message and what to do', () => {
    expect(gatewayErrors.prefix).toBe('GW');
    expect(new Set(gatewayErrors.codes).size).toBe(gatewayErrors.codes.length);
    for (const code of gatewayErrors.codes) {
      expect(code).toMatch(/^GW_[A-Z_]+$/);
      const spec = gatewayErrors.catalog[code];
      expect(spec.message.length, code).toBeGreaterThan(0);
      expect(spec.action.length, code).toBeGreaterThan(0);
    }
  });

  it('uses every code it declares, and raises no code it does not declare', () => {
    const text = new Map(sources().map((file) => [relative(import.meta.dirname, file), readFileSync(file, 'utf8')]));
    const unused = gatewayErrors.codes.filter((code) => ![...text.values()].some((t) => t.includes(`'${code}'`)));
    expect(unused).toEqual([]);
    const unknown = [...text].flatMap(([file, t]) =>
      [...t.matchAll(/'(GW_[A-Z_]+)'/g)].map((m) => m[1]!).filter((code) => !(gatewayErrors.codes as readonly string[]).includes(code)).map((code) => `${file}: ${code}`),
    );
    expect(unknown).toEqual([]);
  });

  it('fakes no code of another library (e.g. SQLite\'s, to reach a corruption path)', () => {
    const faked = sources().filter((file) => /\bcode:\s*'(?!GW_)[A-Z][A-Z_]+'/.test(readFileSync(file, 'utf8')));
    expect(faked.map((file) => relative(import.meta.dirname, file))).toEqual([]);
  });
});
