// A root filesystem booted with `systemd-nspawn --register=no --keep-unit --boot` (no host systemd bus
// here, hence no machinectl): commands run inside through nsenter into the container's init. The
// container shares the host's network, so its listeners and the host's Kafka meet on loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sleep, silentLog, type Log } from '@city/protocol';
import { packageErrors } from '../gateway-package/errors.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface BootedRootfs {
  readonly dir: string;
  /** Milliseconds from starting systemd-nspawn to `is-system-running` answering running (or degraded). */
  readonly bootMs: number;
  /** Runs a command inside the container (all its namespaces) and returns how it ended. */
  exec(argv: readonly string[], options?: { timeoutMs?: number }): Promise<ExecResult>;
  /** Runs a shell script inside; a non-zero exit is a PKG_TOOL_FAILED naming the script and its output. */
  sh(script: string, options?: { timeoutMs?: number }): Promise<string>;
  /** Halts the container (SIGTERM to nspawn powers it off cleanly; SIGKILL after the deadline). */
  close(): Promise<void>;
}

export interface BootOptions {
  log?: Log;
  /** Until `is-system-running` answers (qemu-user boots are slow). */
  bootTimeoutMs?: number;
  /** Extra systemd-nspawn arguments. */
  args?: readonly string[];
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The container's PID 1 as the host sees it: nspawn's child whose command is systemd. */
function findLeader(nspawnPid: number): number | undefined {
  for (const pid of childrenOf(nspawnPid)) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (/(^|\/)(systemd|init)\0/.test(cmdline) || readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') return pid;
    } catch {
      // gone or not ours yet
    }
  }
  return undefined;
}

function run(command: string, argv: readonly string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, [...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(packageErrors.create('PKG_TOOL_MISSING', `${command}: ${err.message}`, err));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? (signal === 'SIGKILL' ? 124 : 128), stdout, stderr });
    });
  });
}

export async function bootRootfs(dir: string, options: BootOptions = {}): Promise<BootedRootfs> {
  const { log = silentLog, bootTimeoutMs = 180_000 } = options;
  const started = Date.now();
  const nspawn: ChildProcess = spawn('systemd-nspawn', ['--register=no', '--keep-unit', '--quiet', '--console=pipe', ...(options.args ?? []), '-D', dir, '--boot'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolvePromise) => nspawn.once('close', (code) => resolvePromise(code)));
  let console = '';
  const keep = (c: Buffer) => {
    console = (console + c.toString('utf8')).slice(-8000);
  };
  nspawn.stdout!.on('data', keep);
  nspawn.stderr!.on('data', keep);
  let gone = false;
  void exited.then(() => (gone = true));
  let leader: number | undefined;

  const close = async (): Promise<void> => {
    if (gone) return;
    nspawn.kill('SIGTERM');
    // A container that does not power off in time is killed, its init too (nspawn's death leaves it running).
    const timer = setTimeout(() => {
      nspawn.kill('SIGKILL');
      if (leader !== undefined) {
        try {
          process.kill(leader, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, 60_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    while (leader === undefined) {
      if (gone) throw packageErrors.create('PKG_TOOL_FAILED', `systemd-nspawn exited before booting ${dir}:\n${console.trim()}`);
      if (Date.now() - started > bootTimeoutMs) throw packageErrors.create('PKG_TOOL_FAILED', `no init in the container after ${bootTimeoutMs} ms:\n${console.trim()}`);
      leader = findLeader(nspawn.pid!);
      if (leader === undefined) await sleep(100);
    }
    const pid = leader;
    const exec = (argv: readonly string[], o: { timeoutMs?: number } = {}) =>
      run('nsenter', ['--target', String(pid), '--all', '--', 'env', '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', ...argv], o.timeoutMs ?? 120_000);
    const sh = async (script: string, o: { timeoutMs?: number } = {}) => {
      const result = await exec(['sh', '-ec', script], o);
      if (result.code !== 0) throw packageErrors.create('PKG_TOOL_FAILED', `in ${dir}: \`${script}\` exited ${result.code}:\n${(result.stdout + result.stderr).trim().slice(-4000)}`);
      return result.stdout;
    };
    // `--wait` blocks until boot has finished; a failed unit elsewhere still counts as booted (degraded).
    for (;;) {
      if (gone) throw packageErrors.create('PKG_TOOL_FAILED', `the container stopped while booting:\n${console.trim()}`);
      const left = bootTimeoutMs - (Date.now() - started);
      if (left <= 0) throw packageErrors.create('PKG_TOOL_FAILED', `${dir} did not finish booting in ${bootTimeoutMs} ms:\n${console.trim()}`);
      const state = await exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: left });
      const answer = state.stdout.trim();
      if (answer === 'running' || answer === 'degraded') break;
      await sleep(200);
    }
    const bootMs = Date.now() - started;
    log('info', `booted ${dir}`, { ms: bootMs });
    return { dir, bootMs, exec, sh, close };
  } catch (err) {
    await close();
    throw err;
  }
}

