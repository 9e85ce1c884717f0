// `npm run rootfs -- ensure [--arch amd64|arm64|all]`: builds and caches the Debian root filesystems the
// gateway package is booted in (CI runs it before the tests); prints each tarball's path on stdout.
import { parseCommandLine, runMain, textLog } from '@city/protocol';
import { packageErrors } from '../gateway-package/errors.ts';
import { ROOTFS_ARCHES, ensureRootfs, type RootfsArch } from './rootfs.ts';

const USAGE = `usage: npm run rootfs -- ensure [--arch amd64|arm64|all] [--verbose]
  build the bookworm root filesystem tarballs once (mmdebstrap; arm64 through qemu-user) and print their paths
  --arch A            amd64, arm64 or all (default all)
  --verbose           show mmdebstrap's output`;

const usageError = (detail: string) => packageErrors.create('PKG_USAGE', detail);

async function main(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(argv, { arch: { type: 'string', default: 'all' }, verbose: { type: 'boolean' } }, { usage: USAGE, usageError, allowPositionals: true });
  if (!args) return 0;
  const [command, ...rest] = args.positionals;
  if (command !== 'ensure' || rest.length > 0) throw usageError(command === undefined ? 'give a command: ensure' : `unknown command "${args.positionals.join(' ')}"`);
  const arch = args.values.arch;
  const arches: readonly RootfsArch[] = arch === 'all' ? ROOTFS_ARCHES : ROOTFS_ARCHES.filter((a) => a === arch);
  if (arches.length === 0) throw usageError(`--arch must be amd64, arm64 or all, got "${arch}"`);
  const log = textLog('rootfs', args.values.verbose === true ? 'debug' : 'info');
  for (const a of arches) process.stdout.write(`${await ensureRootfs(a, log)}\n`);
  return 0;
}

runMain('rootfs', () => main(process.argv.slice(2)), USAGE).then((code) => process.exit(code));
