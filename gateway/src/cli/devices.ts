// `gateway devices add|list|revoke`: manages the device registry file a running gateway reads.
// A revocation made here reaches a running gateway within auth.recheckMs and drops the live connection.
import { readFileSync } from 'node:fs';
import { describeFailure, isHelpWord, parseCommandLine } from '@city/protocol';
import { SECURE_AUTH, openRegistry, type DeviceRegistry } from '../broker/index.ts';
import { gatewayErrors } from '../errors.ts';
import { loadGatewayConfig } from './config.ts';

const WHERE = `  --registry FILE         registry file (default: auth.registryPath of --config, else ${SECURE_AUTH.registryPath})
  --config FILE           the gateway's JSON options file`;

export const DEVICES_USAGE = `usage: gateway devices <command> [options]
  add <id> [--secret-file F | --secret S]
                          register a device (or re-enable a revoked one); without a secret one
                          is generated and printed once: it is stored only as a hash
  list [--json]           devices with their state
  revoke <id>             refuse the device from now on; its live connection is dropped
options:
${WHERE}
gateway devices <command> --help shows one command.`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };
const usageError = (detail: string) => gatewayErrors.create('GW_USAGE', detail);
const NAME = 'gateway devices';

type Flags = Readonly<Record<string, string | boolean | undefined>>;

interface Subcommand {
  usage: string;
  options: { secret?: { type: 'string' }; 'secret-file'?: { type: 'string' }; json?: { type: 'boolean' } };
  /** Whether it names one device. */
  takesId: boolean;
  run(registry: DeviceRegistry, deviceId: string | undefined, values: Flags, io: CliIo): number;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  add: {
    usage: `usage: gateway devices add <id> [--secret-file F | --secret S] [--registry FILE | --config FILE]
  registers a device (or re-enables a revoked one with a new secret)
  --secret-file F         read the device's secret (16 or more characters) from file F, its last line
                          break dropped: the secret stays off the command line and out of ps
  --secret S              the secret itself (seen by ps and shell history: prefer --secret-file)
                          without either, one is generated and printed once: only its hash is stored
${WHERE}`,
    options: { secret: { type: 'string' }, 'secret-file': { type: 'string' } },
    takesId: true,
    run(registry, deviceId, values, io) {
      const given = secretOf(values);
      const secret = registry.add(deviceId!, given);
      io.out(given === undefined ? `added ${deviceId}\nsecret: ${secret}\n(shown once; only its hash is stored)\n` : `added ${deviceId}\n`);
      return 0;
    },
  },
  list: {
    usage: `usage: gateway devices list [--json] [--registry FILE | --config FILE]
  the registered devices with their state (active, or when revoked)
  --json                  one JSON array instead of a line per device
${WHERE}`,
    options: { json: { type: 'boolean' } },
    takesId: false,
    run(registry, _deviceId, values, io) {
      const devices = registry.list();
      if (values.json === true) {
        io.out(`${JSON.stringify(devices)}\n`);
        return 0;
      }
      for (const d of devices) {
        const state = d.revokedAt === null ? 'active' : `revoked ${new Date(d.revokedAt).toISOString()}`;
        io.out(`${d.deviceId}\t${state}\tadded ${new Date(d.createdAt).toISOString()}\n`);
      }
      io.out(`${devices.length} device(s) in ${registry.path}\n`);
      return 0;
    },
  },
  revoke: {
    usage: `usage: gateway devices revoke <id> [--registry FILE | --config FILE]
  refuses the device from now on; a running gateway drops its live connection within auth.recheckMs
${WHERE}`,
    options: {},
    takesId: true,
    run(registry, deviceId, _values, io) {
      if (!registry.revoke(deviceId!)) {
        io.err(`${NAME}: unknown device "${deviceId}"\n`);
        return 1;
      }
      io.out(`revoked ${deviceId}\n`);
      return 0;
    },
  },
};

/** Flags that take a value, so the word after them is not taken for the command. */
const VALUED = new Set(['--registry', '--config', '--secret', '--secret-file']);

/** The secret given with --secret or read from --secret-file (one of them), or undefined. */
function secretOf(values: Flags): string | undefined {
  const file = values['secret-file'];
  if (typeof file !== 'string') return typeof values.secret === 'string' ? values.secret : undefined;
  if (typeof values.secret === 'string') throw usageError('give --secret or --secret-file, not both');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`--secret-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return text.replace(/\r?\n$/, '');
}

/** Index of the subcommand word in argv, or -1. */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (VALUED.has(word)) i++;
    else if (!word.startsWith('-')) return i;
  }
  return -1;
}

/** Runs one `devices` command; returns the process exit code (0 ok, 1 failed, 2 usage). */
export function runDevicesCommand(argv: readonly string[], io: CliIo = stdio): number {
  let usage = DEVICES_USAGE;
  try {
    const at = commandIndex(argv);
    if (at < 0) {
      if (argv.some(isHelpWord)) {
        io.out(`${DEVICES_USAGE}\n`);
        return 0;
      }
      throw usageError('missing command');
    }
    const name = argv[at]!;
    const command = SUBCOMMANDS[name];
    if (command === undefined) throw usageError(`unknown command "${name}"`);
    usage = command.usage;
    const args = parseCommandLine(
      [...argv.slice(0, at), ...argv.slice(at + 1)],
      { registry: { type: 'string' }, config: { type: 'string' }, ...command.options },
      { usage, usageError, allowPositionals: true, out: io.out },
    );
    if (!args) return 0;
    const { values, positionals } = args;
    const [deviceId, ...extra] = positionals;
    if (extra.length > 0 || (!command.takesId && deviceId !== undefined)) throw usageError(`unexpected "${positionals.slice(command.takesId ? 1 : 0).join(' ')}"`);
    if (command.takesId && deviceId === undefined) throw usageError(`${name} needs a device id`);
    const registry = openRegistry(registryPath(values));
    try {
      return command.run(registry, deviceId, values, io);
    } finally {
      registry.close();
    }
  } catch (err) {
    const failure = describeFailure(NAME, err, gatewayErrors.is(err, 'GW_USAGE') ? usage : undefined);
    io.err(failure.text);
    return failure.code;
  }
}

/** --registry, else the registry of --config (the same layering and checks as `gateway start`), else the default. */
function registryPath(values: { registry?: string | undefined; config?: string | undefined }): string {
  if (values.registry !== undefined) return values.registry;
  if (values.config !== undefined) {
    const path = loadGatewayConfig({ file: values.config, env: process.env }).auth.registryPath;
    if (path !== undefined) return path;
  }
  return SECURE_AUTH.registryPath;
}
