// A TCP fault proxy for tests: forwards to a target, or cuts clients off in the two ways networks do —
// `drop` resets every connection and refuses new ones at once; `blackhole` accepts and keeps
// connections open but never forwards a byte (a dead route: the client only learns by timing out).
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'forward' | 'drop' | 'blackhole';

export interface TcpProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Listen port; 0 (default) picks a free one. */
  port?: number;
  host?: string;
}

export interface TcpProxyStats {
  mode: ProxyMode;
  accepted: number;
  open: number;
  /** Connections ended by `drop` or by leaving `blackhole`. */
  cut: number;
  bytesForwarded: number;
  /** Bytes read and thrown away while not forwarding (a blackhole swallows them). */
  bytesDiscarded: number;
}

export interface TcpProxy {
  start(): Promise<void>;
  /** Bound port (after start). */
  port(): number;
  setMode(mode: ProxyMode): void;
  mode(): ProxyMode;
  stats(): TcpProxyStats;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
}

export function createTcpProxy(options: TcpProxyOptions): TcpProxy {
  const host = options.host ?? '127.0.0.1';
  const pairs = new Set<Pair>();
  let mode: ProxyMode = 'forward';
  let server: Server | undefined;
  let boundPort = 0;
  let starting: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  const stats = { accepted: 0, cut: 0, bytesForwarded: 0, bytesDiscarded: 0 };

  const destroy = (pair: Pair) => {
    pair.client.destroy();
    pair.upstream?.destroy();
    pairs.delete(pair);
  };

  const onConnection = (client: Socket) => {
    stats.accepted++;
    const pair: Pair = { client, upstream: undefined };
    pairs.add(pair);
    client.on('error', () => destroy(pair));
    client.on('close', () => destroy(pair));
    if (mode === 'drop') {
      stats.cut++;
      client.resetAndDestroy();
      pairs.delete(pair);
      return;
    }
    if (mode === 'blackhole') {
      // Read and discard, so the client's writes succeed and nothing tells it the route is dead.
      client.on('data', (chunk: Buffer) => (stats.bytesDiscarded += chunk.length));
      return;
    }
    const upstream = createConnection({ host: options.targetHost, port: options.targetPort });
    pair.upstream = upstream;
    upstream.on('error', () => destroy(pair));
    upstream.on('close', () => destroy(pair));
    client.on('data', (chunk: Buffer) => {
      if (mode !== 'forward') {
        stats.bytesDiscarded += chunk.length;
        return;
      }
      stats.bytesForwarded += chunk.length;
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      if (mode !== 'forward') {
        stats.bytesDiscarded += chunk.length;
        return;
      }
      stats.bytesForwarded += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
  };

  return {
    start() {
      starting ??= (async () => {
        server = createServer({ noDelay: true }, onConnection);
        server.listen(options.port ?? 0, host);
        await once(server, 'listening');
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error('tcp proxy: unexpected listen address');
        boundPort = address.port;
      })();
      return starting;
    },
    port: () => boundPort,
    mode: () => mode,
    setMode(next) {
      const previous = mode;
      mode = next;
      if (next === previous) return;
      if (next === 'drop') {
        for (const pair of [...pairs]) {
          stats.cut++;
          pair.client.resetAndDestroy();
          destroy(pair);
        }
      } else if (next === 'blackhole') {
        // Existing connections stay open but go silent (the data handlers above now discard).
        for (const pair of pairs) {
          pair.client.resume();
          pair.upstream?.resume();
        }
      } else if (previous === 'blackhole') {
        // Their byte streams have gaps now: end them so clients reconnect to a clean stream.
        for (const pair of [...pairs]) {
          stats.cut++;
          destroy(pair);
        }
      }
    },
    stats: () => ({ mode, open: pairs.size, ...stats }),
    close() {
      closing ??= (async () => {
        for (const pair of [...pairs]) destroy(pair);
        if (server?.listening) await new Promise<void>((resolve) => server!.close(() => resolve()));
      })();
      return closing;
    },
  };
}
