// The gateway as a child process, driven only through its CLI: start, SIGKILL, SIGTERM. Shared by the
// soak harness and the gateway benchmarks so both measure the gateway as it is deployed.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { GATEWAY_NODE_FLAGS } from '@city/gateway';
import { waitFor } from '@city/protocol';
import { accepts } from '../support/net.ts';

const ROOT = resolve(import.meta.dirname, '../..');

async function waitForPort(port: number, timeoutMs: number, child: ChildProcess): Promise<void> {
  await waitFor(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`gateway exited with ${child.exitCode ?? child.signalCode} before listening`);
      return accepts(port);
    },
    { timeoutMs, intervalMs: 100, what: `gateway listening on ${port}` },
  );
}

export interface GatewayProcess {
  /** Spawns `node gateway/src/cli.ts start …args` and waits until its MQTT port accepts connections. */
  start(): Promise<void>;
  kill9(): Promise<void>;
  /** SIGTERM (the gateway's ordered shutdown), SIGKILL after 30 s. */
  stop(): Promise<void>;
  running(): boolean;
  pid(): number | undefined;
}

export interface GatewayProcessOptions {
  args: string[];
  /** The MQTT port given in args, to wait for. */
  port: number;
  /** Receives the child's stdout and stderr (JSON log lines). */
  log: WriteStream;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
}

export function gatewayProcess(options: GatewayProcessOptions): GatewayProcess {
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  return {
    running,
    pid: () => child?.pid,
    async start() {
      child = spawn(
        process.execPath,
        // As `npm run gateway` starts it.
        [...GATEWAY_NODE_FLAGS, ...(options.nodeArgs ?? []), join(ROOT, 'gateway/src/cli.ts'), 'start', ...options.args],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout!.pipe(options.log, { end: false });
      child.stderr!.pipe(options.log, { end: false });
      exited = once(child, 'exit');
      try {
        await waitForPort(options.port, 60_000, child);
      } catch (err) {
        throw new Error(`${(err as Error).message}; its log ends with:\n${readFileSync(String(options.log.path), 'utf8').slice(-2_000)}`);
      }
    },
    async kill9() {
      if (!running()) return;
      child!.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (!running()) return;
      child!.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
