// The Lambda bundle: built into a temp folder, zipped, and loadable on its own (import() it and find the
// handler, with no node_modules beside it).
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support/teardown.ts';
import { buildLambda } from './build.ts';

describe('the Power BI Lambda bundle', () => {
  it('is one ES module exporting handler, zipped for upload', async () => {
    const out = tempDir('lambda-bundle-');
    const built = await buildLambda({ outDir: out });
    const mod = (await import(pathToFileURL(built.file).href)) as { handler?: unknown };
    expect(typeof mod.handler).toBe('function');
    // Without configuration it refuses with the variable to set, not a missing module.
    await expect((mod.handler as (e: unknown, c: unknown) => Promise<unknown>)({}, {})).rejects.toThrow(/REDSHIFT_DATABASE|REDSHIFT_WORKGROUP/);
    const listing = spawnSync('unzip', ['-Z1', built.zip], { encoding: 'utf8' });
    expect(listing.stdout.trim().split('\n')).toEqual(['index.mjs']);
    const text = await readFile(built.file, 'utf8');
    expect(text.length > 0 && Buffer.byteLength(text) === built.bytes).toBe(true);
    // Every module-level import is Node's own: the packages (Entra's identity library too) are inside.
    const imported = [...text.matchAll(/^import\s[^;]*?from\s*"([^"]+)"/gm)].map((m) => m[1]!.replace(/^node:/, ''));
    expect(imported.filter((name) => !builtinModules.includes(name))).toEqual([]);
    expect(text).toContain('ClientSecretCredential');
  });
});
