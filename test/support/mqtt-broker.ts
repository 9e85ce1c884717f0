// An MQTT broker inside the test process, on 127.0.0.1 port 0, closed after the current test. The caller
// brings the broker core (e.g. aedes, which the workspace under test declares), this file the socket side.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { onTeardown } from './teardown.ts';

/** What the broker core must offer: a handler for each connection, and close. */
export interface MqttBrokerCore {
  handle(stream: Socket): unknown;
  close(callback?: () => void): void;
}

export interface TestMqttBroker {
  url: string;
  port: number;
  /** Client connections open right now. */
  connections(): number;
  close(): Promise<void>;
}

export async function startMqttBroker(create: () => MqttBrokerCore | Promise<MqttBrokerCore>): Promise<TestMqttBroker> {
  const core = await create();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    core.handle(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('mqtt broker: unexpected listen address');
  let closing: Promise<void> | undefined;
  const broker: TestMqttBroker = {
    url: `mqtt://127.0.0.1:${address.port}`,
    port: address.port,
    connections: () => sockets.size,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
        await new Promise<void>((resolve) => core.close(() => resolve()));
      })();
      return closing;
    },
  };
  onTeardown(() => broker.close());
  return broker;
}
