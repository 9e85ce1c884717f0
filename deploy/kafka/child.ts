// Child processes of the launcher (Maven, the JVM tools): run to completion with a bounded output, and
// the tails of their output for error messages.
import { spawn } from 'node:child_process';
import { open, stat } from 'node:fs/promises';

const LOG_TAIL_CHARS = 4_000;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
}

/** Runs a command to completion, collecting stdout and stderr together (bounded). */
export function run(command: string, args: string[], options: { timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-64_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      rejectRun(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, output, timedOut });
    });
  });
}

/** The last lines of a file (a broker log), for an error message. */
export async function fileTail(path: string): Promise<string> {
  try {
    const { size } = await stat(path);
    const handle = await open(path, 'r');
    try {
      const length = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return tail(buffer.toString('utf8'));
    } finally {
      await handle.close();
    }
  } catch (err) {
    return `  (cannot read it: ${errorMessage(err)})`;
  }
}

/** The last lines of a JVM's output, minus config dumps ("\tkey = value") that crowd out the error. */
export function tail(text: string, chars = LOG_TAIL_CHARS): string {
  const cleaned = text.replace(/^\s*\t[\w.-]+ = .*\n/gm, '').trimEnd();
  const cut = cleaned.length > chars ? cleaned.slice(cleaned.indexOf('\n', cleaned.length - chars) + 1) : cleaned;
  return cut
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

export function isEnoent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
