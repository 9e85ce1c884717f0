// An S3-protocol server for tests: s3rver on 127.0.0.1 port 0 over a temp folder, with one bucket, plus an
// HTTP fault proxy that makes some requests fail the ways S3 does (500/503 replies, dropped connections).
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';

/** The part of s3rver (untyped CommonJS) used here. */
interface S3rverServer {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverServer;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

export interface S3Connection {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export interface TestS3 extends S3Connection {
  bucket: string;
  /** A client configured for this server (path style, checksums only when required). */
  client: S3Client;
  /** Folder s3rver keeps its objects in. */
  directory: string;
  stop(): Promise<void>;
}

/** s3rver accepts any signature made with these. */
export const TEST_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Client settings every S3-compatible endpoint needs with recent SDK versions. */
export function testS3Client(connection: S3Connection): S3Client {
  return new S3Client({
    endpoint: connection.endpoint,
    region: connection.region,
    // A copy: the SDK marks the object it is given.
    credentials: { ...connection.credentials },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function startS3(options: { bucket?: string } = {}): Promise<TestS3> {
  const bucket = options.bucket ?? `test-${randomUUID().slice(0, 8)}`;
  const directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const address = await server.run();
  const connection: S3Connection = { endpoint: `http://127.0.0.1:${address.port}`, region: 'us-east-1', credentials: { ...TEST_S3_CREDENTIALS } };
  const client = testS3Client(connection);
  let stopped: Promise<void> | undefined;
  return {
    ...connection,
    bucket,
    client,
    directory,
    stop() {
      stopped ??= (async () => {
        client.destroy();
        // The SDK keeps connections alive; close() alone would wait for them.
        server.httpServer?.closeAllConnections();
        await server.close();
        await rm(directory, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

export type S3Fault = 'pass' | '500' | '503' | 'drop';

export interface FaultProxy {
  endpoint: string;
  /** Requests answered by a fault, per fault. */
  readonly faults: Record<Exclude<S3Fault, 'pass'>, number>;
  readonly requests: number;
  /** Decides per request; replace it at any time. */
  decide: (req: IncomingMessage, n: number) => S3Fault;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of an S3 endpoint. By default every `everyNth` request fails, cycling through
 * 503, 500 and a dropped connection (deterministic, so a run is reproducible).
 */
export async function startFaultProxy(target: string, options: { everyNth?: number } = {}): Promise<FaultProxy> {
  const { hostname, port } = new URL(target);
  const everyNth = options.everyNth ?? 4;
  const cycle: Exclude<S3Fault, 'pass'>[] = ['503', '500', 'drop'];
  let requests = 0;
  const faults = { '500': 0, '503': 0, drop: 0 };
  const proxy: FaultProxy = {
    endpoint: '',
    faults,
    get requests() {
      return requests;
    },
    decide: (_req, n) => (n % everyNth === 0 ? (cycle[(n / everyNth) % cycle.length] as S3Fault) : 'pass'),
    stop: async () => undefined,
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const fault = proxy.decide(req, ++requests);
    if (fault === 'drop') {
      faults.drop++;
      req.socket.destroy();
      return;
    }
    if (fault === '500' || fault === '503') {
      faults[fault]++;
      // Read the body first so the client sees the reply, not a reset.
      req.resume();
      req.on('end', () => {
        const code = fault === '503' ? 'SlowDown' : 'InternalError';
        res.writeHead(Number(fault), { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected fault</Message></Error>`);
      });
      return;
    }
    const upstream = request({ host: hostname, port, method: req.method, path: req.url, headers: req.headers }, (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
    });
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let stopped: Promise<void> | undefined;
  proxy.stop = () => {
    stopped ??= new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    return stopped;
  };
  return proxy;
}
