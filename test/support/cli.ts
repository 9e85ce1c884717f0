// Runs the project's commands as child processes, the way a user does: `runCli` to completion,
// `spawnCli` for long-running ones (wait for a line, signal, wait for the exit). Spawned ones are
// killed after the current test.
import { spawn, type ChildProcess } from 'node:child_process';
import { onTeardown } from './teardown.ts';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to the environment; KAFKA_BROKERS is removed unless given here. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Node flags before the script, e.g. --max-semi-space-size=4. */
  nodeArgs?: string[];
  timeoutMs?: number;
}

function environment(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const { KAFKA_BROKERS: _fromParent, ...rest } = process.env;
  return { ...rest, ...env };
}

/** Runs `node script args…` to its end (killed after timeoutMs, 60 s by default). */
export function runCli(script: string, args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], {
    env: environment(options.env),
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface RunningCli {
  readonly child: ChildProcess;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stdout or stderr (rejects after timeoutMs or on exit). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Settles when the process has exited. */
  readonly exited: Promise<CliResult>;
  signal(signal: NodeJS.Signals): void;
}

/** Starts `node script args…` and returns at once; it is SIGKILLed after the current test if still running. */
export function spawnCli(script: string, args: readonly string[], options: CliOptions = {}): RunningCli {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], {
    env: environment(options.env),
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const w of [...watchers]) w();
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    notify();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    notify();
  });
  let done = false;
  const exited = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => {
      done = true;
      notify();
      resolve({ code, signal, stdout: out, stderr: err });
    });
  });
  onTeardown(async () => {
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    signal: (signal) => child.kill(signal),
    waitForOutput(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern) ?? err.match(pattern);
          if (match) finish(() => resolve(match));
          else if (done) finish(() => reject(new Error(`exited before printing ${pattern}\nstdout: ${out}\nstderr: ${err}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`))), timeoutMs);
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          watchers.delete(check);
          settle();
        };
        watchers.add(check);
        check();
      });
    },
  };
}
