// The aedes broker and its listeners: MQTT over TCP, and optionally over TLS and WebSocket. Every
// connection passes device security's frame guard before aedes parses it.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import mqttPacket from 'mqtt-packet';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Log } from '@city/protocol';
import { gatewayErrors } from '../errors.ts';
import type { LimitsConfig, Security, TlsConfig, WebSocketConfig } from './security.ts';

export interface BrokerOptions {
  gatewayId: string;
  mqtt: { host: string; port: number };
  tls?: TlsConfig | undefined;
  websocket?: WebSocketConfig | undefined;
  limits: LimitsConfig;
  security: Security;
  authorizePublish: (client: Client | null, packet: PublishPacket, callback: (err?: Error | null) => void) => void;
  log: Log;
}

export interface BrokerPorts {
  mqtt: number;
  tls?: number;
  websocket?: number;
}

export interface Broker {
  ports(): BrokerPorts;
  /** The MQTT listener's address. */
  address(): AddressInfo;
  connectedClients(): number;
  /** Stops the listeners, drops every connection and closes aedes. */
  close(): Promise<void>;
}

const listen = (server: Server | HttpServer, port: number, host: string) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

const portOf = (server: Server | HttpServer | undefined): number | undefined => (server?.address() as AddressInfo | null | undefined)?.port;

// mqtt-packet (the copy aedes writes with) otherwise builds, at the first packet it writes, a Buffer for
// each of the 65,536 packet ids: ~10 MB of heap and array buffers held for the life of the process,
// to save a 2-byte allocation per PUBACK.
mqttPacket.writeToStream.cacheNumbers = false;

/** Opens aedes and every configured listener; a listener that fails closes the ones already open. */
export async function openBroker(options: BrokerOptions): Promise<Broker> {
  const { security, log } = options;
  // Read before any listener opens, so a bad path fails start() with nothing listening.
  let tlsFiles: { cert: Buffer; key: Buffer } | undefined;
  if (options.tls !== undefined) {
    try {
      tlsFiles = { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) };
    } catch (err) {
      throw gatewayErrors.create('GW_TLS_FILES', (err as Error).message, err);
    }
  }
  const aedes = await Aedes.createBroker({
    id: options.gatewayId,
    preConnect: security.preConnect,
    authenticate: security.authenticate,
    authorizeSubscribe: security.authorizeSubscribe,
    authorizePublish: options.authorizePublish,
    drainTimeout: 10_000,
    maxTopicLevels: 8,
    heartbeatInterval: 60_000,
  });
  aedes.on('clientError', (client, err) => log('warn', 'client error', { clientId: client.id, error: err.message }));
  const handle = aedes.handle;
  const tcp = createServer((socket) => handle(security.guard(socket)));
  let tls: TlsServer | undefined;
  let web: HttpServer | undefined;
  let wsServer: WebSocketServer | undefined;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const closed = (s: Server | HttpServer | undefined) => (s?.listening ? new Promise<void>((resolve) => s.close(() => resolve())) : Promise.resolve());
      const servers = [closed(tcp), closed(tls), closed(web)];
      for (const ws of wsServer?.clients ?? []) ws.terminate();
      wsServer?.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await Promise.all(servers);
    })();
    return closing;
  };

  try {
    await listen(tcp, options.mqtt.port, options.mqtt.host);
    if (options.tls !== undefined && tlsFiles !== undefined) {
      const server = createTlsServer(tlsFiles, (socket) => handle(security.guard(socket)));
      tls = server;
      server.on('tlsClientError', (err) => log('warn', 'TLS handshake failed', { error: err.message }));
      await listen(server, options.tls.port, options.tls.host ?? options.mqtt.host);
    }
    if (options.websocket !== undefined) {
      const server = createHttpServer();
      web = server;
      const maxPayload = options.limits.maxPacketBytes === 0 ? undefined : options.limits.maxPacketBytes;
      wsServer = new WebSocketServer({ server, path: options.websocket.path, ...(maxPayload === undefined ? {} : { maxPayload }) });
      wsServer.on('connection', (ws, req) => {
        const stream = createWebSocketStream(ws);
        stream.on('error', () => ws.terminate());
        handle(security.guard(stream, req.socket.remoteAddress), req);
      });
      await listen(server, options.websocket.port, options.websocket.host ?? options.mqtt.host);
    }
  } catch (err) {
    await close();
    throw err;
  }
  security.attach(aedes);

  return {
    ports() {
      const tlsPort = portOf(tls);
      const wsPort = portOf(web);
      return { mqtt: portOf(tcp) ?? 0, ...(tlsPort === undefined ? {} : { tls: tlsPort }), ...(wsPort === undefined ? {} : { websocket: wsPort }) };
    },
    address: () => tcp.address() as AddressInfo,
    connectedClients: () => aedes.connectedClients,
    close,
  };
}
