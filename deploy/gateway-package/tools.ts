// Runs the external tools of the package build (npm, tar, dpkg-deb, mmdebstrap) with their output
// kept for the error message, and each line passed on for progress.
import { spawn } from 'node:child_process';
import { packageErrors } from './errors.ts';

export interface ToolOptions {
  cwd?: string;
  timeoutMs?: number;
  onLine?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

const TAIL_CHARS = 4000;

/** Runs a tool to completion; its stdout is the result. A missing tool or a failure is a PKG_ error. */
export function runTool(command: string, args: readonly string[], options: ToolOptions = {}): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let tail = '';
    let partial = '';
    const onText = (chunk: Buffer, keep: boolean) => {
      const text = chunk.toString('utf8');
      if (keep) out += text;
      tail = (tail + text).slice(-TAIL_CHARS);
      if (options.onLine === undefined) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') options.onLine(line);
    };
    child.stdout.on('data', (c: Buffer) => onText(c, true));
    child.stderr.on('data', (c: Buffer) => onText(c, false));
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
          }, options.timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') reject(packageErrors.create('PKG_TOOL_MISSING', `${command} is not on PATH`, err));
      else reject(packageErrors.create('PKG_TOOL_FAILED', `${command}: ${err.message}`, err));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(out);
      else reject(packageErrors.create('PKG_TOOL_FAILED', `${command} ${args.join(' ')} exited ${signal ?? code}:\n${tail.trim()}`));
    });
  });
}
