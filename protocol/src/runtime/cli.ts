// Command lines, one way: every command and subcommand takes --help (usage on stdout, exit 0); a bad
// flag is a usage error (exit 2); any other failure exits 1 with its code and message.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
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

type HelpFlag = { help: { type: 'boolean'; short: 'h' } };
type StrictConfig<O extends ParseArgsOptionsConfig> = { args: string[]; options: O & HelpFlag; allowPositionals: boolean; strict: true };

/**
 * What parseCommandLine returns: parseArgs's own result type, named so that declaration files keep it
 * (an inferred one refers to @types/node internals and reads as `any` from other packages).
 */
export type CommandLineArgs<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<StrictConfig<O>>>;

/**
 * Parses `argv` strictly. Returns undefined when --help was given (usage already printed), so a
 * command cannot forget to honour it: `const args = parseCommandLine(…); if (!args) return 0;`.
 */
export function parseCommandLine<const O extends ParseArgsOptionsConfig>(argv: readonly string[], options: O, command: CommandLine): CommandLineArgs<O> | undefined {
  const config: StrictConfig<O> = {
    args: [...argv],
    options: { ...options, help: { type: 'boolean', short: 'h' } },
    allowPositionals: command.allowPositionals ?? false,
    strict: true,
  };
  let parsed: CommandLineArgs<O>;
  try {
    parsed = parseArgs(config);
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
    const failure = describeFailure(name, err, usage);
    code = failure.code;
    process.stderr.write(failure.text);
  }
  process.exitCode = code;
  return code;
}

/**
 * What a command prints on stderr when it fails with `err` (`name: CODE: message`, then the usage for a
 * usage error) and its exit code; for commands that report through their own streams.
 */
export function describeFailure(name: string, err: unknown, usage?: string): { code: 1 | 2; text: string } {
  const code = exitCodeOf(err);
  const label = err instanceof CityError ? `${err.code}: ` : '';
  const text = `${name}: ${label}${err instanceof Error ? err.message : String(err)}\n`;
  return { code, text: code === 2 && usage !== undefined ? `${text}${usage.trimEnd()}\n` : text };
}
