// `gateway devices add|list|revoke`: manages the device registry file a running gateway reads.
// A revocation made here reaches a running gateway within auth.recheckMs and drops the live connection.
import { parseArgs } from 'node:util';
import { loadGatewayConfig } from './config.ts';
import { openRegistry } from './registry.ts';
import { SECURE_AUTH } from './security.ts';

export const DEVICES_USAGE = `usage: gateway devices <command> [options]
  add <id> [--secret S]   register a device (or re-enable a revoked one); without --secret a secret
                          is generated and printed once: it is stored only as a hash
  list [--json]           devices with their state
  revoke <id>             refuse the device from now on; its live connection is dropped
options:
  --registry FILE         registry file (default: auth.registryPath of --config, else ${SECURE_AUTH.registryPath})
  --config FILE           the gateway's JSON options file`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** Runs one `devices` command; returns the process exit code (0 ok, 1 failed, 2 usage). */
export function runDevicesCommand(argv: readonly string[], io: CliIo = stdio): number {
  const usage = (message: string): number => {
    io.err(`gateway devices: ${message}\n${DEVICES_USAGE}\n`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        registry: { type: 'string' },
        config: { type: 'string' },
        secret: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(`${DEVICES_USAGE}\n`);
    return 0;
  }
  const [command, deviceId, ...extra] = positionals;
  if (command === undefined) return usage('missing command');
  if (!['add', 'list', 'revoke'].includes(command)) return usage(`unknown command "${command}"`);
  if (extra.length > 0) return usage(`unexpected "${extra.join(' ')}"`);
  if (command === 'list' && deviceId !== undefined) return usage('list takes no device id');
  if ((command === 'add' || command === 'revoke') && deviceId === undefined) return usage(`${command} needs a device id`);
  if (values.secret !== undefined && command !== 'add') return usage('--secret goes with add');

  let path = values.registry;
  if (path === undefined && values.config !== undefined) {
    // The same layering and checks as `gateway start --config`, so both open the same file.
    try {
      path = loadGatewayConfig({ file: values.config, env: process.env }).auth.registryPath;
    } catch (err) {
      io.err(`gateway devices: ${(err as Error).message}\n`);
      return 1;
    }
  }
  path ??= SECURE_AUTH.registryPath;

  let registry;
  try {
    registry = openRegistry(path);
  } catch (err) {
    io.err(`gateway devices: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    switch (command) {
      case 'add': {
        const secret = registry.add(deviceId!, values.secret);
        io.out(values.secret === undefined ? `added ${deviceId}\nsecret: ${secret}\n(shown once; only its hash is stored)\n` : `added ${deviceId}\n`);
        return 0;
      }
      case 'list': {
        const devices = registry.list();
        if (values.json) {
          io.out(`${JSON.stringify(devices)}\n`);
        } else {
          for (const d of devices) {
            const state = d.revokedAt === null ? 'active' : `revoked ${new Date(d.revokedAt).toISOString()}`;
            io.out(`${d.deviceId}\t${state}\tadded ${new Date(d.createdAt).toISOString()}\n`);
          }
          io.out(`${devices.length} device(s) in ${path}\n`);
        }
        return 0;
      }
      case 'revoke': {
        if (!registry.revoke(deviceId!)) {
          io.err(`gateway devices: unknown device "${deviceId}"\n`);
          return 1;
        }
        io.out(`revoked ${deviceId}\n`);
        return 0;
      }
      default:
        return usage(`unknown command "${command}"`);
    }
  } catch (err) {
    io.err(`gateway devices: ${(err as Error).message}\n`);
    return 1;
  } finally {
    registry.close();
  }
}
