// `npm run package:gateway -- --arch arm64|amd64|all`: builds the gateway's Debian package(s) with
// dpkg-deb; progress on stderr, the path of each .deb on stdout.
import { parseCommandLine, runMain, textLog } from '@city/protocol';
import { PACKAGE_ARCHES, PACKAGE_COMPRESSIONS, PACKAGE_NAME, buildPackage, defaultVersion, type PackageArch, type PackageCompression } from './build.ts';
import { packageErrors } from './errors.ts';

const USAGE = `usage: npm run package:gateway -- --arch arm64|amd64|all [--version V] [--out DIR] [--compression xz|zstd]
  build ${PACKAGE_NAME}_<version>_<arch>.deb: its own Node 24, the bundled gateway, a hardened systemd unit
  --arch A            arm64, amd64 or all (required)
  --version V         Debian version (default ${defaultVersion()}; a later build for an upgrade, e.g. ${defaultVersion()}+2)
  --out DIR           where the .deb goes (default deploy/gateway-package/dist)
  --compression C     xz (default, smallest) or zstd (builds in seconds)`;

const usageError = (detail: string) => packageErrors.create('PKG_USAGE', detail);

async function main(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(argv, { arch: { type: 'string' }, version: { type: 'string' }, out: { type: 'string' }, compression: { type: 'string', default: 'xz' } }, { usage: USAGE, usageError });
  if (!args) return 0;
  const { arch, version, out } = args.values;
  const compression = PACKAGE_COMPRESSIONS.find((c) => c === args.values.compression);
  if (compression === undefined) throw usageError(`--compression must be xz or zstd, got "${args.values.compression}"`);
  if (arch === undefined) throw usageError('--arch is required (arm64, amd64 or all)');
  const arches: readonly PackageArch[] = arch === 'all' ? PACKAGE_ARCHES : PACKAGE_ARCHES.filter((a) => a === arch);
  if (arches.length === 0) throw usageError(`--arch must be arm64, amd64 or all, got "${arch}"`);
  const log = textLog('package');
  for (const a of arches) {
    const built = await buildPackage({ arch: a, log, compression: compression satisfies PackageCompression, ...(version === undefined ? {} : { version }), ...(out === undefined ? {} : { outDir: out }) });
    process.stdout.write(`${built.path}\n`);
  }
  return 0;
}

runMain('package:gateway', () => main(process.argv.slice(2)), USAGE).then((code) => process.exit(code));
