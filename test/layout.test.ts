// The gateway ships to small field devices: no cloud package may reach its production dependency tree.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  link?: boolean;
  resolved?: string;
}

const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as {
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

describe('package layout', () => {
  it('keeps cloud packages out of the gateway production dependency tree', () => {
    const tree = productionTree('gateway');
    expect(tree).toContain('aedes');
    expect(tree).toContain('better-sqlite3');
    expect(tree).toContain('kafkajs');
    const cloud = [...tree].filter((name) => /^@aws-sdk\/|^@smithy\/|duckdb|^pg$|^pg-|^@electric-sql\/pglite|^@city\/cloud$/.test(name));
    expect(cloud).toEqual([]);
  });

  it('finds the cloud packages where they belong, so the check above can see them', () => {
    expect([...productionTree('cloud')].some((name) => name.includes('duckdb'))).toBe(true);
  });
});
