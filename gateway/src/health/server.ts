// The status and metrics listener (/healthz JSON, /metrics Prometheus text). Serving reads only cached
// figures: a scrape never waits on system sampling.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gatewayErrors } from '../errors.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.ts';
import { healthzBody, type StatusSnapshot } from './status.ts';

export interface StatusServerOptions {
  host: string;
  port: number;
  snapshot: () => StatusSnapshot;
}

export interface StatusServer {
  start(): Promise<{ host: string; port: number }>;
  /** Stops listening and ends open connections; the same promise for every caller. */
  close(): Promise<void>;
  port(): number;
}

export function createStatusServer(options: StatusServerOptions): StatusServer {
  let server: Server | undefined;
  let closing: Promise<void> | undefined;

  const send = (res: ServerResponse, status: number, type: string, body: string, head: boolean): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(head ? undefined : body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
      return;
    }
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    try {
      if (path === '/healthz') {
        const body = healthzBody(options.snapshot());
        send(res, body.healthy ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, head);
      } else if (path === '/metrics') {
        send(res, 200, METRICS_CONTENT_TYPE, renderMetrics(options.snapshot()), head);
      } else {
        send(res, 404, 'text/plain; charset=utf-8', 'not found; try /healthz or /metrics\n', head);
      }
    } catch (err) {
      send(res, 500, 'text/plain; charset=utf-8', `status unavailable: ${(err as Error).message}\n`, head);
    }
  };

  return {
    async start() {
      if (server) throw gatewayErrors.create('GW_HTTP_LISTEN', 'start() called twice');
      const s = createServer(handle);
      server = s;
      s.keepAliveTimeout = 5000;
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) => reject(gatewayErrors.create('GW_HTTP_LISTEN', `${options.host}:${options.port}: ${err.message}`, err)));
        s.listen(options.port, options.host, () => resolve());
      });
      const address = s.address() as AddressInfo;
      return { host: address.address, port: address.port };
    },
    close() {
      if (closing) return closing;
      closing = new Promise<void>((resolve) => {
        if (!server?.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
        // A scraper's keep-alive connection must not hold shutdown open.
        server.closeAllConnections();
      });
      return closing;
    },
    port: () => (server?.address() as AddressInfo | null)?.port ?? 0,
  };
}

