// Debian root filesystems for booting the gateway package without hardware: mmdebstrap builds a
// bookworm tarball per architecture once (arm64 runs under qemu-user through binfmt_misc) and caches
// it under `${XDG_CACHE_HOME:-~/.cache}/smart-city/rootfs/`; each test extracts a fresh copy.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { silentLog, type Log } from '@city/protocol';
import { packageErrors } from '../gateway-package/errors.ts';
import { runTool } from '../gateway-package/tools.ts';

export const ROOTFS_ARCHES = ['amd64', 'arm64'] as const;
export type RootfsArch = (typeof ROOTFS_ARCHES)[number];

export const ROOTFS_SUITE = 'bookworm';
/** What a booted gateway needs beyond apt's minimum: an init, and D-Bus for systemctl inside. */
export const ROOTFS_PACKAGES = ['systemd', 'systemd-sysv', 'dbus'] as const;

export function rootfsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(resolve(env['XDG_CACHE_HOME'] || join(homedir(), '.cache')), 'smart-city', 'rootfs');
}

/** The tarball's name carries a hash of what went into it: a changed package list builds a new one. */
export function rootfsTarball(arch: RootfsArch, env: NodeJS.ProcessEnv = process.env): string {
  const key = createHash('sha256').update(JSON.stringify({ suite: ROOTFS_SUITE, arch, packages: ROOTFS_PACKAGES })).digest('hex').slice(0, 10);
  return join(rootfsCacheDir(env), `${ROOTFS_SUITE}-${arch}-${key}.tar`);
}

/** Whether this machine can run the arch's binaries (amd64 natively, arm64 through qemu-user). */
export async function ensureBinfmt(arch: RootfsArch): Promise<void> {
  if (arch === 'amd64' && process.arch === 'x64') return;
  const dir = '/proc/sys/fs/binfmt_misc';
  if (!existsSync(join(dir, 'register'))) await runTool('mount', ['binfmt_misc', '-t', 'binfmt_misc', dir]);
  if (!readdirSync(dir).includes('qemu-aarch64')) await runTool('update-binfmts', ['--enable', 'qemu-aarch64']);
  if (!readdirSync(dir).includes('qemu-aarch64')) {
    throw packageErrors.create('PKG_TOOL_MISSING', 'binfmt_misc has no qemu-aarch64 entry: install qemu-user-static and binfmt-support');
  }
}

const building = new Map<string, Promise<string>>();

/** Builds the arch's root filesystem tarball once (about 4 minutes for arm64 here) and returns its path. */
export function ensureRootfs(arch: RootfsArch, log: Log = silentLog, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const tarball = rootfsTarball(arch, env);
  let pending = building.get(tarball);
  if (pending === undefined) {
    pending = build(arch, tarball, log);
    building.set(tarball, pending);
    pending.catch(() => building.delete(tarball));
  }
  return pending;
}

async function build(arch: RootfsArch, tarball: string, log: Log): Promise<string> {
  if (existsSync(tarball)) return tarball;
  await ensureBinfmt(arch);
  await mkdir(rootfsCacheDir(), { recursive: true });
  const partial = `${tarball}.${process.pid}.partial`;
  log('info', `building the ${ROOTFS_SUITE} ${arch} root filesystem with mmdebstrap (once; cached)`, { tarball });
  try {
    await runTool(
      'mmdebstrap',
      ['--variant=apt', `--architectures=${arch}`, `--include=${ROOTFS_PACKAGES.join(',')}`, '--format=tar', ROOTFS_SUITE, partial],
      { timeoutMs: 30 * 60_000, onLine: (line) => log('debug', line) },
    );
    await rename(partial, tarball);
  } finally {
    await rm(partial, { force: true });
  }
  return tarball;
}

/** A fresh copy of the cached root filesystem in `dir` (which must not exist yet). */
export async function extractRootfs(tarball: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: false });
  await runTool('tar', ['-xf', tarball, '-C', dir, '--numeric-owner']);
}
