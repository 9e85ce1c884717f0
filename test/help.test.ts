// The front door: every command and subcommand of every npm script answers --help with its usage on
// stdout and exit code 0, and prints nothing on stderr (no error, no dependency warning).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.ts';

const ROOT = join(import.meta.dirname, '..');
const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** An npm script `node [flags] FILE [args]` as node flags, the file and its fixed arguments. */
function command(name: string): { nodeArgs: string[]; file: string; args: string[] } {
  const words = scripts[name]?.split(/\s+/) ?? [];
  expect(words[0], `npm script ${name}`).toBe('node');
  const at = words.findIndex((w, i) => i > 0 && !w.startsWith('-'));
  return { nodeArgs: words.slice(1, at), file: join(ROOT, words[at]!), args: words.slice(at + 1) };
}

const CASES: [script: string, args: string[]][] = [
  ['kafka', []],
  ['kafka', ['fetch']],
  ['kafka', ['start']],
  ['kafka', ['topics']],
  ['image', []],
  ['image', ['build']],
  ['image', ['base']],
  ['cdk', []],
  ['cdk', ['synth']],
  ['gateway', []],
  ['gateway', ['start']],
  ['gateway', ['status']],
  ['gateway', ['devices']],
  ['gateway', ['devices', 'add']],
  ['gateway', ['devices', 'list']],
  ['gateway', ['devices', 'revoke']],
  ['sink', []],
  ['sink', ['run']],
  ['sink', ['query']],
  ['sink', ['compact']],
  ['sink', ['process']],
  ['sink', ['live']],
  ['sink', ['warehouse']],
  ['sink', ['dashboard']],
  ['query', []],
  ['sim', []],
  ['city', []],
  ['soak', []],
  ['package:gateway', []],
  ['lambda:build', []],
  ['rootfs', []],
];

describe('--help', () => {
  it.each(CASES)('npm run %s -- %j --help prints usage and exits 0', async (script, args) => {
    const { nodeArgs, file, args: fixed } = command(script);
    const result = await runCli(file, [...fixed, ...args, '--help'], { nodeArgs, cwd: ROOT, timeoutMs: 30_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/usage/i);
  });
});
