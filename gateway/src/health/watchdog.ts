// systemd's service watchdog (Type=notify, WatchdogSec=): READY=1 once the gateway serves, then
// WATCHDOG=1 only while it is really healthy — the buffer takes writes and the MQTT listener accepts a
// connection — so a gateway that is alive but useless is restarted too. Node has no unix datagram
// socket for $NOTIFY_SOCKET, so each notification runs `systemd-notify` (the unit sets
// NotifyAccess=all: the sender is a child). That is one short process every WatchdogSec/4; pinging four
// times a period also covers systemd 252 now and then missing a notification whose sender has already
// exited. Outside systemd (no $NOTIFY_SOCKET) the watchdog does nothing.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { silentLog, type Log } from '@city/protocol';

export interface WatchdogProbe {
  /** Why the gateway is not healthy, or undefined when it is (state running, buffer writable). */
  problem(): string | undefined;
  /** The MQTT listener to connect to (a wildcard address is probed on loopback). */
  intake(): { host: string; port: number };
  /** A short status line for `systemctl status`. */
  status?(): string;
}

export interface WatchdogOptions {
  probe: WatchdogProbe;
  log?: Log;
  env?: Readonly<Record<string, string | undefined>>;
  /** Sends one notification (default: runs systemd-notify). */
  notify?: (fields: readonly string[]) => Promise<void>;
  /** How long an intake connect may take before intake counts as not serving. */
  connectTimeoutMs?: number;
}

export interface Watchdog {
  /** Whether systemd asked for notifications (NOTIFY_SOCKET set for this process). */
  readonly enabled: boolean;
  /** Milliseconds between checks (0 when systemd set no watchdog: READY=1 only). */
  readonly intervalMs: number;
  /** Checks now and notifies if healthy (READY=1 and WATCHDOG=1). Resolves to the problem, if any. */
  check(): Promise<string | undefined>;
  start(): void;
  /** Stops the timer and tells systemd the gateway is stopping. */
  close(): Promise<void>;
}

/** Runs `systemd-notify FIELD…`; it inherits NOTIFY_SOCKET from this process. */
export function systemdNotify(fields: readonly string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('systemd-notify', [...fields], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`systemd-notify exited ${code}`))));
  });
}

const loopback = (host: string) => (host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host);

/** Whether a TCP connection to the listener is accepted within the timeout (then closed at once). */
export function intakeAccepts(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect({ host: loopback(host), port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function createWatchdog(options: WatchdogOptions): Watchdog {
  const { probe, log = silentLog, env = process.env, notify = systemdNotify, connectTimeoutMs = 2000 } = options;
  // WATCHDOG_PID names the process systemd watches; a child that inherited the variables is not it.
  const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === String(process.pid);
  const enabled = env.NOTIFY_SOCKET !== undefined && env.NOTIFY_SOCKET !== '';
  const usec = Number(env.WATCHDOG_USEC);
  const intervalMs = enabled && forUs && Number.isFinite(usec) && usec > 0 ? Math.max(250, Math.floor(usec / 1000 / 4)) : 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let lastProblem: string | undefined;
  let checking: Promise<string | undefined> | undefined;

  const send = async (fields: string[]): Promise<void> => {
    try {
      await notify(fields);
    } catch (err) {
      log('warn', 'systemd notification failed', { fields, error: (err as Error).message });
    }
  };

  const evaluate = async (): Promise<string | undefined> => {
    const problem = probe.problem();
    if (problem !== undefined) return problem;
    const { host, port } = probe.intake();
    return (await intakeAccepts(host, port, connectTimeoutMs)) ? undefined : `MQTT listener ${loopback(host)}:${port} does not accept connections`;
  };

  const checkOnce = async (): Promise<string | undefined> => {
    const problem = await evaluate();
    if (closed) return problem;
    if (problem !== undefined) {
      // No WATCHDOG=1: if this lasts WatchdogSec, systemd restarts the gateway.
      if (problem !== lastProblem) log('warn', 'unhealthy: not feeding the systemd watchdog', { problem });
      lastProblem = problem;
      if (enabled) await send([`STATUS=unhealthy: ${problem}`]);
      return problem;
    }
    if (lastProblem !== undefined) log('info', 'healthy again: feeding the systemd watchdog');
    lastProblem = undefined;
    if (enabled) {
      // READY=1 again each time is ignored once started, and covers a first one that was missed.
      const fields = ['READY=1', ...(intervalMs > 0 ? ['WATCHDOG=1'] : []), `STATUS=${probe.status?.() ?? 'serving'}`];
      await send(fields);
    }
    return undefined;
  };

  const check = (): Promise<string | undefined> => (checking ??= checkOnce().finally(() => (checking = undefined)));

  const schedule = () => {
    if (closed || intervalMs === 0) return;
    timer = setTimeout(() => void check().finally(schedule), intervalMs);
    timer.unref();
  };

  return {
    enabled,
    intervalMs,
    check,
    start() {
      if (!enabled || closed) return;
      void check().finally(schedule);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      await checking?.catch(() => undefined);
      if (enabled) await send(['STOPPING=1']);
    },
  };
}
