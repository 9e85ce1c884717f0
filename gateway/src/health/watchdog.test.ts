// The systemd watchdog feeds only a healthy gateway: READY=1 and WATCHDOG=1 while the probe finds no
// problem and the MQTT listener accepts; nothing but a STATUS line otherwise; inert outside systemd.
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createWatchdog, type WatchdogProbe } from './watchdog.ts';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) if (s.listening) await new Promise((r) => s.close(r));
});

async function listener(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.destroy()).listen(0, '127.0.0.1');
  servers.push(server);
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

function recorder() {
  const sent: string[][] = [];
  return { sent, notify: async (fields: readonly string[]) => void sent.push([...fields]) };
}

const SYSTEMD = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '4000000', WATCHDOG_PID: String(process.pid) };

describe('systemd watchdog', () => {
  it('sends READY=1 and WATCHDOG=1 while healthy, at a quarter of WatchdogSec', async () => {
    const { port } = await listener();
    const { sent, notify } = recorder();
    const probe: WatchdogProbe = { problem: () => undefined, intake: () => ({ host: '0.0.0.0', port }), status: () => 'serving 2 device(s)' };
    const watchdog = createWatchdog({ probe, notify, env: SYSTEMD });
    expect(watchdog.enabled).toBe(true);
    expect(watchdog.intervalMs).toBe(1000);
    expect(await watchdog.check()).toBeUndefined();
    expect(sent).toEqual([['READY=1', 'WATCHDOG=1', 'STATUS=serving 2 device(s)']]);
    await watchdog.close();
    expect(sent.at(-1)).toEqual(['STOPPING=1']);
  });

  it('starves the watchdog while the buffer is not writable, and feeds it again once it is', async () => {
    const { port } = await listener();
    const { sent, notify } = recorder();
    let problem: string | undefined = 'buffer not writable: SQLITE_FULL';
    const watchdog = createWatchdog({ probe: { problem: () => problem, intake: () => ({ host: '127.0.0.1', port }) }, notify, env: SYSTEMD });
    expect(await watchdog.check()).toBe('buffer not writable: SQLITE_FULL');
    expect(sent).toEqual([['STATUS=unhealthy: buffer not writable: SQLITE_FULL']]);
    problem = undefined;
    expect(await watchdog.check()).toBeUndefined();
    expect(sent.at(-1)).toContain('WATCHDOG=1');
    await watchdog.close();
  });

  it('starves the watchdog when the MQTT listener no longer accepts connections', async () => {
    const { server, port } = await listener();
    await new Promise((r) => server.close(r));
    const { sent, notify } = recorder();
    const watchdog = createWatchdog({ probe: { problem: () => undefined, intake: () => ({ host: '127.0.0.1', port }) }, notify, env: SYSTEMD });
    expect(await watchdog.check()).toMatch(/does not accept connections/);
    expect(sent.flat().some((f) => f === 'WATCHDOG=1' || f === 'READY=1')).toBe(false);
    await watchdog.close();
  });

  it('does nothing outside systemd, and sets no timer when the watchdog is for another process', async () => {
    const { port } = await listener();
    const { sent, notify } = recorder();
    const probe: WatchdogProbe = { problem: () => undefined, intake: () => ({ host: '127.0.0.1', port }) };
    const outside = createWatchdog({ probe, notify, env: {} });
    expect(outside.enabled).toBe(false);
    outside.start();
    expect(await outside.check()).toBeUndefined();
    await outside.close();
    expect(sent).toEqual([]);
    const inherited = createWatchdog({ probe, notify, env: { ...SYSTEMD, WATCHDOG_PID: '1' } });
    expect(inherited.intervalMs).toBe(0);
    await inherited.check();
    expect(sent).toEqual([['READY=1', 'STATUS=serving']]);
    await inherited.close();
  });
});
