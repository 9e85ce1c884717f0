// Command lines, one way: every command and subcommand takes --help (usage on stdout, exit 0); a bad
// flag is a usage error (exit 2); any other failure exits 1 with its code and message.
import { parseArgs, type ParseArgsConfig, type ParseArgsOptionsConfig } from 'node:util';
import { CityError, exitCodeOf } from '../errors.ts';

export interface CommandLine {
  /** Printed for --help, and after a usage error. */
  usage: string;
  /** The package's usage error, e.g. `(detail) => cloudErrors.create('CLD_USAGE', detail)`. */
  usageError: (detail: string) => Error;
  allowPositionals?: boolean;
  /** Where usage goes; stdout by default. */
  out?: (text: string) => void;
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** What parseCommandLine gives for options `O`: typed values (and positionals, empty unless allowed). */
export type CommandLineValues<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ options: O & typeof HELP; allowPositionals: true; strict: true } & ParseArgsConfig>>;

/**
 * Parses `argv` strictly. Returns undefined when --help was given (usage already printed), so a
 * command cannot forget to honour it: `const args = parseCommandLine(…); if (!args) return 0;`.
 */
export function parseCommandLine<const O extends ParseArgsOptionsConfig>(argv: readonly string[], options: O, command: CommandLine): CommandLineValues<O> | undefined {
  let parsed: CommandLineValues<O>;
  try {
    // The options object is built here, so its type must be given back: inferred, the values were `any`.
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, ...HELP },
      allowPositionals: command.allowPositionals ?? false,
      strict: true,
    }) as CommandLineValues<O>;
  } catch (err) {
    throw command.usageError(err instanceof Error ? err.message : String(err));
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    (command.out ?? ((text) => process.stdout.write(text)))(`${command.usage.trimEnd()}\n`);
    return undefined;
  }
  return parsed;
}

/** True for the words that ask for help instead of naming a command. */
export function isHelpWord(word: string | undefined): boolean {
  return word === '--help' || word === '-h' || word === 'help';
}

/**
 * Runs a process entry and sets the exit code: what `main` returns, else 2 for a usage error (printed
 * with the usage) and 1 for anything else (printed as `name: CODE: message`).
 */
export async function runMain(name: string, main: () => Promise<number> | number, usage?: string): Promise<number> {
  let code: number;
  try {
    code = await main();
  } catch (err) {
    code = exitCodeOf(err);
    const label = err instanceof CityError ? `${err.code}: ` : '';
    process.stderr.write(`${name}: ${label}${err instanceof Error ? err.message : String(err)}\n`);
    if (code === 2 && usage !== undefined) process.stderr.write(`${usage.trimEnd()}\n`);
  }
  process.exitCode = code;
  return code;
}
