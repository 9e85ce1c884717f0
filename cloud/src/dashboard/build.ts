// Builds the page with Vite (the repository's tool) into a folder the dashboard serves. Run as
// `npm run dashboard:build`; the CLI and the city build it when it is missing or older than its sources.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cloudErrors } from '../errors.ts';
import { DEFAULT_PAGE_DIR } from './options.ts';

export const PAGE_SOURCE_DIR = join(import.meta.dirname, 'page');

/** Vite's command-line entry, found the way Node finds packages: the nearest node_modules upwards. */
function viteEntry(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', 'vite', 'bin', 'vite.js');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw cloudErrors.create('CLD_DASHBOARD_PAGE', 'Vite is not installed (run npm ci at the repository root)');
  }
}

/** Builds the page into `outDir` (default: where the dashboard looks); resolves with that folder. */
export async function buildPage(outDir: string = DEFAULT_PAGE_DIR): Promise<string> {
  const args = [viteEntry(), 'build', '--config', join(PAGE_SOURCE_DIR, 'vite.config.ts'), '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'];
  const output: Buffer[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: PAGE_SOURCE_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (b: Buffer) => output.push(b));
    child.stderr.on('data', (b: Buffer) => output.push(b));
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw cloudErrors.create('CLD_DASHBOARD_PAGE', `vite build exited with ${code}: ${Buffer.concat(output).toString('utf8').trim().slice(-2000)}`);
  return outDir;
}

/** Newest modification time among the page's sources (its folder, public/ and the shared message types). */
function sourcesChangedAt(): number {
  const files = [
    ...readdirSync(PAGE_SOURCE_DIR, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(PAGE_SOURCE_DIR, e.name)),
    ...readdirSync(join(PAGE_SOURCE_DIR, 'public')).map((name) => join(PAGE_SOURCE_DIR, 'public', name)),
    join(PAGE_SOURCE_DIR, '..', 'messages.ts'),
  ];
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/** Builds the page unless `outDir` holds a build newer than every source; resolves with the folder. */
export async function ensurePage(outDir: string = DEFAULT_PAGE_DIR): Promise<{ dir: string; built: boolean }> {
  const index = join(outDir, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= sourcesChangedAt()) return { dir: outDir, built: false };
  return { dir: await buildPage(outDir), built: true };
}

if (import.meta.main) {
  const out = await buildPage(process.argv[2]);
  process.stdout.write(`dashboard page built in ${out}\n`);
}
