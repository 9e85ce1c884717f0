// The soak's fault proxy: forwards, drops (reset, refuse) and blackholes (accept, never forward).
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { waitFor } from '@city/protocol';
import { describe, expect, it } from 'vitest';
import { createTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { onTeardown } from '../support/teardown.ts';

let proxy: TcpProxy | undefined;

async function setup(): Promise<number> {
  const echo: Server = createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  onTeardown(() => new Promise((r) => echo.close(r)));
  const address = echo.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const started = createTcpProxy({ targetHost: '127.0.0.1', targetPort: address.port });
  proxy = started;
  await started.start();
  onTeardown(() => started.close());
  return started.port();
}

async function connect(port: number): Promise<Socket> {
  const s = createConnection({ host: '127.0.0.1', port });
  onTeardown(() => s.destroy());
  s.on('error', () => undefined);
  await once(s, 'connect');
  return s;
}

// events.once would reject on the reset's 'error'; the close is what matters here.
const closed = (s: Socket) => new Promise<void>((r) => s.once('close', () => r()));

async function echoes(s: Socket, text: string): Promise<string> {
  s.write(text);
  const [chunk] = (await once(s, 'data')) as [Buffer];
  return chunk.toString();
}

describe('tcp fault proxy', () => {
  it('forwards both ways, then drop closes open connections and refuses new ones until healed', async () => {
    const port = await setup();
    const s = await connect(port);
    expect(await echoes(s, 'hello')).toBe('hello');
    const cut = closed(s);
    proxy!.setMode('drop');
    await cut;
    const refused = createConnection({ host: '127.0.0.1', port });
    onTeardown(() => refused.destroy());
    refused.on('error', () => undefined);
    await closed(refused);
    proxy!.setMode('forward');
    expect(await echoes(await connect(port), 'again')).toBe('again');
    expect(proxy!.stats().cut).toBeGreaterThanOrEqual(2);
  });

  it('blackhole keeps connections open but silent, and ends them on healing', async () => {
    const port = await setup();
    const s = await connect(port);
    proxy!.setMode('blackhole');
    const fresh = await connect(port);
    let received = 0;
    for (const socket of [s, fresh]) socket.on('data', (c: Buffer) => (received += c.length));
    const forwardedBefore = proxy!.stats().bytesForwarded;
    s.write('lost');
    fresh.write('lost too');
    // The proxy took both writes and passed nothing on, so nothing can come back; the sockets stay open.
    await waitFor(() => proxy!.stats().bytesDiscarded >= 'lost'.length + 'lost too'.length, { timeoutMs: 5_000, what: 'the proxy to swallow both writes' });
    expect(proxy!.stats().bytesForwarded).toBe(forwardedBefore);
    expect(received).toBe(0);
    expect(s.destroyed || fresh.destroyed).toBe(false);
    const ended = Promise.all([closed(s), closed(fresh)]);
    proxy!.setMode('forward');
    await ended;
    expect(await echoes(await connect(port), 'back')).toBe('back');
  });
});
