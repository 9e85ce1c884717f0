// Package boundaries: the gateway ships to small field devices, so no cloud package may reach its
// production dependency tree; and every import is declared by the package that makes it, so nothing
// works only because npm happened to hoist a neighbour's dependency.
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  link?: boolean;
  resolved?: string;
}

const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockEntry>;
};

/** Resolves `name` from the lock entry at `from` the way Node does: nearest node_modules upwards. */
function resolveEntry(from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (!dir) return undefined;
    const up = dir.lastIndexOf('node_modules/');
    dir = up <= 0 ? '' : dir.slice(0, up - 1);
  }
}

function productionTree(workspace: string): Set<string> {
  const seen = new Set<string>();
  const visit = (location: string) => {
    let entry = lock.packages[location]!;
    if (entry.link && entry.resolved) {
      location = entry.resolved;
      entry = lock.packages[location]!;
    }
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const child = resolveEntry(location, name);
      if (child === undefined || seen.has(child)) continue;
      seen.add(child);
      visit(child);
    }
  };
  visit(workspace);
  return new Set([...seen].map((location) => location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length)));
}

interface Manifest {
  name?: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const rootManifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
const WORKSPACES = rootManifest.workspaces ?? [];

/** Every TypeScript file git would track, by workspace ('' for the root). */
function sourceFiles(): { file: string; workspace: string }[] {
  const out: { file: string; workspace: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
      const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
        out.push({ file: path, workspace: WORKSPACES.find((w) => path.startsWith(`${w}/`)) ?? '' });
      }
    }
  };
  walk('');
  return out;
}

/** Bare module specifiers a file imports: static, dynamic, re-exports, and those loaded through createRequire. */
function importsOf(path: string): string[] {
  const text = readFileSync(join(ROOT, path), 'utf8');
  const specifiers = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
  for (const m of text.matchAll(/createRequire\([^)]*\)\(\s*['"]([^'"]+)['"]\s*\)/g)) specifiers.push(m[1]!);
  return specifiers;
}

const BUILTINS = new Set(builtinModules);
const packageName = (specifier: string): string => {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
};

function declared(workspace: string): Set<string> {
  const manifest = JSON.parse(readFileSync(join(ROOT, workspace, 'package.json'), 'utf8')) as Manifest;
  return new Set(
    Object.keys({ ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies, ...manifest.optionalDependencies }),
  );
}

describe('package layout', () => {
  it('keeps cloud packages out of the gateway production dependency tree', () => {
    const tree = productionTree('gateway');
    expect(tree).toContain('aedes');
    expect(tree).toContain('better-sqlite3');
    expect(tree).toContain('@platformatic/kafka');
    // The forwarder moved off kafkajs; only the gateway's tests still use it (as a reference and a consumer).
    expect(tree).not.toContain('kafkajs');
    const cloud = [...tree].filter((name) => /^@aws-sdk\/|^@smithy\/|duckdb|^pg$|^pg-|^@electric-sql\/pglite|^@city\/cloud$/.test(name));
    expect(cloud).toEqual([]);
  });

  it('finds the cloud packages where they belong, so the check above can see them', () => {
    expect([...productionTree('cloud')].some((name) => name.includes('duckdb'))).toBe(true);
  });

  it('declares every package a file imports in the package.json of its own workspace', () => {
    const undeclared: string[] = [];
    const files = sourceFiles();
    for (const { file, workspace } of files) {
      const allowed = declared(workspace);
      for (const specifier of importsOf(file)) {
        if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:') || BUILTINS.has(specifier)) continue;
        const name = packageName(specifier);
        if (!allowed.has(name)) undeclared.push(`${file}: ${name} (declare it in ${workspace || '.'}/package.json)`);
      }
    }
    expect(files.length).toBeGreaterThan(100);
    expect(undeclared).toEqual([]);
  });

  it('keeps product code inside its workspace: only tests reach test/support by path', () => {
    const crossing: string[] = [];
    for (const { file, workspace } of sourceFiles()) {
      if (workspace === '') continue;
      const isTest = /\.test\.ts$/.test(file) || file.startsWith('test/');
      for (const specifier of importsOf(file)) {
        if (!specifier.startsWith('.')) continue;
        const target = relative(ROOT, join(ROOT, dirname(file), specifier)).split(sep).join('/');
        if (target.startsWith(`${workspace}/`)) continue;
        if (isTest && target.startsWith('test/support/')) continue;
        crossing.push(`${file} → ${target} (import it by package name)`);
      }
    }
    expect(crossing).toEqual([]);
  });
});
