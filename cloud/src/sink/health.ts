// The sink's /healthz: what a container health check or a load balancer asks. Healthy while the sink
// runs and its consumer has not crashed for good; the body carries the state and the counters.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LifecycleState } from '@city/protocol';
import { cloudErrors } from '../errors.ts';
import type { SinkStats } from './events.ts';
import type { Sink } from './sink.ts';

export interface SinkHealthBody {
  healthy: boolean;
  state: LifecycleState;
  /** Why it is unhealthy, when it is. */
  reason?: string;
  /** Last successful flush (ISO time), if any. */
  lastFlushAt?: string;
  stats: SinkStats;
}

export interface SinkHealthServer {
  start(): Promise<{ host: string; port: number }>;
  /** Stops listening and ends open connections; the same promise for every caller. */
  close(): Promise<void>;
}

export function createSinkHealthServer(options: { host: string; port: number; sink: Sink }): SinkHealthServer {
  const { sink } = options;
  let crashed: string | undefined;
  let lastFlushAt: string | undefined;
  sink.on('crash', ({ error, restart }) => {
    if (!restart) crashed = `Kafka consumer crashed and will not restart: ${error.message}`;
  });
  sink.on('flush', () => {
    lastFlushAt = new Date().toISOString();
  });

  const body = (): SinkHealthBody => {
    const state = sink.state;
    const reason = crashed ?? (state === 'running' ? undefined : `sink is ${state}`);
    return { healthy: reason === undefined, state, ...(reason === undefined ? {} : { reason }), ...(lastFlushAt === undefined ? {} : { lastFlushAt }), stats: sink.stats() };
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://sink').pathname;
    const [status, text] =
      req.method !== 'GET' && req.method !== 'HEAD' ? [405, 'method not allowed\n'] : path === '/healthz' ? [0, ''] : [404, 'not found; try /healthz\n'];
    if (status !== 0) {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(text);
      return;
    }
    const b = body();
    const json = `${JSON.stringify(b)}\n`;
    res.writeHead(b.healthy ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(json) });
    res.end(req.method === 'HEAD' ? undefined : json);
  };

  let server: Server | undefined;
  let closing: Promise<void> | undefined;
  return {
    async start() {
      const s = createServer(handle);
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) => reject(cloudErrors.create('CLD_HTTP_LISTEN', `${options.host}:${options.port}: ${err.message}`, err)));
        s.listen(options.port, options.host, () => resolve());
      });
      const address = s.address() as AddressInfo;
      return { host: address.address, port: address.port };
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (!server?.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
