// Process entry of `npm run image -- build|base`: the sink's OCI image, built offline with podman.
// Progress goes to stderr; `build` prints the tag, size and times as one JSON line on stdout.
import { isHelpWord, parseCommandLine, runMain, textLog } from '@city/protocol';
import { buildImage, ensureBaseTarball, imageBaseCacheDir } from './build.ts';
import { imageErrors } from './errors.ts';

const BUILD_USAGE = `usage: npm run image -- build [--tag REF] [--storage-driver D] [--base-cache DIR] [--keep-context]
  bundle the sink, stage Node 24 and DuckDB's bindings on a Debian minbase and run podman build
  --tag REF           image reference (default localhost/city-sink:<version>)
  --storage-driver D  podman storage driver (default vfs)
  --base-cache DIR    where the Debian base tarball is cached (default ${imageBaseCacheDir()})
  --keep-context      keep the staged build context (its path is printed)`;

const BASE_USAGE = `usage: npm run image -- base [--base-cache DIR]
  make the Debian bookworm minbase tarball with mmdebstrap into the cache (once; build does it too)`;

const USAGE = `usage: npm run image -- <command> [options]   (--help after a command for its options)
  build     build the sink image (prints tag, size and seconds as JSON)
  base      make and cache the Debian base only

${BUILD_USAGE}

${BASE_USAGE}`;

const usageError = (detail: string) => imageErrors.create('IMAGE_USAGE', detail);

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (isHelpWord(command)) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = textLog('image');
  switch (command) {
    case 'build': {
      const args = parseCommandLine(
        rest,
        { tag: { type: 'string' }, 'storage-driver': { type: 'string' }, 'base-cache': { type: 'string' }, 'keep-context': { type: 'boolean' } },
        { usage: BUILD_USAGE, usageError },
      );
      if (!args) return 0;
      const built = await buildImage({
        tag: args.values.tag,
        storageDriver: args.values['storage-driver'],
        baseCacheDir: args.values['base-cache'],
        keepContext: args.values['keep-context'],
        log,
      });
      process.stdout.write(`${JSON.stringify({ ...built, sizeMiB: Math.round(built.sizeBytes / 2 ** 20) })}\n`);
      return 0;
    }
    case 'base': {
      const args = parseCommandLine(rest, { 'base-cache': { type: 'string' } }, { usage: BASE_USAGE, usageError });
      if (!args) return 0;
      process.stdout.write(`${await ensureBaseTarball(args.values['base-cache'] ?? imageBaseCacheDir(), log)}\n`);
      return 0;
    }
    case undefined:
      throw usageError('a command is required: build or base');
    default:
      throw usageError(`unknown command "${command}"`);
  }
}

if (import.meta.main) await runMain('image', () => main(process.argv.slice(2)), USAGE);
