// Ports for tests, benchmarks and the soak: a free one to bind, and whether something listens on one.
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  return address.port;
}

/**
 * A free loopback port below Linux's ephemeral range (32768+), for a listener another process binds
 * later (a service in a container on the host's network): a port from freePort() can be handed to a
 * neighbouring test's listener in between, one from here only by another call of this.
 */
export async function freePortOutsideEphemeral(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) continue;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }
  throw new Error('no free port in 20000-31999');
}

/** Whether a connection to 127.0.0.1:`port` is accepted. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
