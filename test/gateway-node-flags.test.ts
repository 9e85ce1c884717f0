// The gateway's Node flags are spelled out where TypeScript cannot reach (a unit file, a shell script,
// an npm script, a shebang): each must start node with exactly GATEWAY_NODE_FLAGS.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GATEWAY_NODE_FLAGS } from '@city/gateway';

const ROOT = join(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The flags between `node` and the script on each line that starts the gateway's node. */
function flagsBefore(text: string, script: RegExp): string[][] {
  const found: string[][] = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    const node = words.findIndex((w) => /(^|\/)node$/.test(w));
    const at = words.findIndex((w, i) => i > node && script.test(w));
    if (node >= 0 && at > node) found.push(words.slice(node + 1, at).filter((w) => !w.startsWith('--max-old-space-size=')));
  }
  return found;
}

describe('gateway node flags', () => {
  it('are the same in the service unit, gateway.sh, npm run gateway and the CLI shebang', () => {
    const places = {
      'city-gateway.service': flagsBefore(read('deploy/gateway-package/files/city-gateway.service'), /gateway\.mjs$/),
      'gateway.sh': flagsBefore(read('deploy/gateway-package/files/gateway.sh'), /gateway\.mjs$/),
      'npm run gateway': flagsBefore((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.gateway!, /cli\.ts$/),
      // The shebang names no script: the kernel appends the file's own path.
      'gateway/src/cli.ts': flagsBefore(`${read('gateway/src/cli.ts').split('\n')[0]!.replace('#!/usr/bin/env -S ', '')} cli.ts`, /^cli\.ts$/),
    };
    expect(places['city-gateway.service']).toHaveLength(1);
    expect(places['gateway.sh']).toHaveLength(2);
    for (const [place, lines] of Object.entries(places)) {
      expect(lines.length, place).toBeGreaterThan(0);
      for (const flags of lines) expect(flags, place).toEqual([...GATEWAY_NODE_FLAGS]);
    }
  });
});
