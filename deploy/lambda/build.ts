// The Power BI Lambda, bundled for upload: esbuild follows the handler's imports (the warehouse's Data
// API adapter, the Power BI output, @azure/identity) into one ES module, index.mjs, so the function needs
// no node_modules and no layer of ours. The folder is zipped beside it: upload the zip, runtime
// nodejs24.x, handler index.handler.
import { spawnSync } from 'node:child_process';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Log } from '@city/protocol';
import { packageErrors } from '../gateway-package/errors.ts';

const ROOT = join(import.meta.dirname, '..', '..');
export const LAMBDA_ENTRY = 'cloud/src/live/lambda/handler.ts';
export const LAMBDA_HANDLER = 'index.handler';
export const LAMBDA_RUNTIME = 'nodejs24.x';
export const DEFAULT_LAMBDA_OUT = join(ROOT, 'deploy', 'lambda', 'dist');

export interface LambdaBundle {
  /** Folder holding index.mjs (what the zip holds). */
  dir: string;
  file: string;
  zip: string;
  bytes: number;
}

export async function buildLambda(options: { outDir?: string; zip?: boolean; log?: Log } = {}): Promise<LambdaBundle> {
  const outDir = options.outDir ?? DEFAULT_LAMBDA_OUT;
  const dir = join(outDir, 'powerbi-lambda');
  const zip = join(outDir, 'powerbi-lambda.zip');
  await rm(dir, { recursive: true, force: true });
  await rm(zip, { force: true });
  await mkdir(dir, { recursive: true });
  options.log?.('info', 'bundling the Power BI Lambda with esbuild', { entry: LAMBDA_ENTRY });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { index: LAMBDA_ENTRY },
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    // pg's optional native binding is never installed; the handler does not use pg at all (the
    // warehouse module imports it for its PostgreSQL adapter).
    external: ['pg-native'],
    // CommonJS dependencies call require(); an ES module bundle has none of its own.
    banner: { js: "import { createRequire as __cityCreateRequire } from 'node:module'; const require = __cityCreateRequire(import.meta.url);" },
    minifySyntax: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'silent',
  }).catch((err: unknown) => {
    throw packageErrors.create('PKG_TOOL_FAILED', `esbuild: ${err instanceof Error ? err.message : String(err)}`, err);
  });
  if (result.errors.length > 0) throw packageErrors.create('PKG_TOOL_FAILED', `esbuild: ${result.errors.map((e) => e.text).join('; ')}`);
  const file = join(dir, 'index.mjs');
  if (options.zip !== false) {
    const zipped = spawnSync('zip', ['-q', '-X', '-j', zip, file], { encoding: 'utf8' });
    if (zipped.error !== undefined) throw packageErrors.create('PKG_TOOL_MISSING', `zip: ${zipped.error.message} (apt-get install zip)`, zipped.error);
    if (zipped.status !== 0) throw packageErrors.create('PKG_TOOL_FAILED', `zip exited with ${zipped.status}: ${zipped.stderr}`);
  }
  return { dir, file, zip, bytes: (await stat(file)).size };
}
