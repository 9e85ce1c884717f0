// `gateway start|status|devices`: one entry per command, each owning its flags and usage.
import { describeFailure, isHelpWord } from '@city/protocol';
import { gatewayErrors } from '../errors.ts';
import { DEVICES_USAGE, runDevicesCommand } from './devices.ts';
import { START_USAGE, startCommand } from './start.ts';
import { STATUS_USAGE, statusCommand } from './status.ts';

export const GATEWAY_USAGE = `usage: gateway <command> [options]
  start     run the gateway (the default command)
  status    ask a running gateway how it is (exit 0 healthy, 1 unhealthy, 3 unreachable)
  devices   manage the device registry
gateway <command> --help shows a command's options.`;

interface Command {
  usage: string;
  run(argv: readonly string[]): number | Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  start: { usage: START_USAGE, run: startCommand },
  status: { usage: STATUS_USAGE, run: statusCommand },
  devices: { usage: DEVICES_USAGE, run: (argv) => runDevicesCommand(argv) },
};

/** Runs the command line; usage errors print the command's usage and return 2, other errors are thrown. */
export async function main(argv: readonly string[]): Promise<number> {
  const first = argv[0];
  if (isHelpWord(first)) {
    process.stdout.write(`${GATEWAY_USAGE}\n`);
    return 0;
  }
  // `gateway --port 1883 …` still means start, as before commands existed.
  const implicit = first === undefined || first.startsWith('-');
  const name = implicit ? 'start' : first;
  const command = COMMANDS[name];
  let usage = GATEWAY_USAGE;
  try {
    if (command === undefined) throw gatewayErrors.create('GW_USAGE', `unknown command "${name}"`);
    usage = command.usage;
    return await command.run(implicit ? argv : argv.slice(1));
  } catch (err) {
    if (!gatewayErrors.is(err, 'GW_USAGE')) throw err;
    const failure = describeFailure('gateway', err, usage);
    process.stderr.write(failure.text);
    return failure.code;
  }
}
