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
import { parsePublishesDirectly } from './parser.ts';
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

// mqtt-packet writes a PUBACK as three chunks (header, length, id) into a socket it corks until the next
// tick: a writev and a nextTick per acknowledgement, the gateway's largest syscall cost at the field
// load. A QoS 1 PUBACK of MQTT 3.1/3.1.1 (aedes speaks no MQTT 5) is four fixed bytes: one write.
const writePacket = mqttPacket.writeToStream;
const PUBACK_HEADER = 0x40;
mqttPacket.writeToStream = Object.defineProperty(
  function writeToStream(packet: mqttPacket.Packet, stream: NodeJS.WritableStream, opts?: object): boolean {
    if (packet.cmd === 'puback' && typeof packet.messageId === 'number' && (opts as { protocolVersion?: number } | undefined)?.protocolVersion !== 5) {
      const bytes = Buffer.allocUnsafe(4);
      bytes[0] = PUBACK_HEADER;
      bytes[1] = 2;
      bytes.writeUInt16BE(packet.messageId, 2);
      return stream.write(bytes);
    }
    return writePacket(packet, stream, opts);
  },
  'cacheNumbers',
  { get: () => writePacket.cacheNumbers, set: (value: boolean) => (writePacket.cacheNumbers = value) },
) as typeof mqttPacket.writeToStream;

// aedes parses each connection with mqtt-packet's parser(); PUBLISH packets are decoded by our own (parser.ts).
parsePublishesDirectly(mqttPacket);

type PublishDone = (err?: Error | null) => void;
type PublishFn = (packet: PublishPacket, client: Client | null | PublishDone, done?: PublishDone) => void;

/**
 * After the PUBACK aedes routes every publish: retained store, offline queues (two promises), its
 * emitter's topic match, the `published` hook — for a device's event that nobody subscribes to (the
 * gateway's work is done in authorizePublish). Until the first subscription is authorised, a publish
 * that is not retained and not $SYS is routed to no one, so it skips that work; from then on every
 * publish takes aedes's own path.
 */
function routeOnlyWhenSubscribed(aedes: Aedes, anySubscription: () => boolean): void {
  const route = (aedes.publish as unknown as PublishFn).bind(aedes);
  const publish: PublishFn = (packet, client, done) => {
    if (typeof client === 'function') return route(packet, client);
    if (anySubscription() || packet.retain || packet.topic.startsWith('$SYS')) return route(packet, client, done);
    done?.(null);
  };
  (aedes as unknown as { publish: PublishFn }).publish = publish;
}

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
  // Set before aedes adds the subscription, so no publish after it skips routing.
  let subscribed = false;
  const aedes = await Aedes.createBroker({
    id: options.gatewayId,
    preConnect: security.preConnect,
    authenticate: security.authenticate,
    authorizeSubscribe: (client, sub, callback) => {
      subscribed = true;
      security.authorizeSubscribe(client, sub, callback);
    },
    authorizePublish: options.authorizePublish,
    drainTimeout: 10_000,
    maxTopicLevels: 8,
    heartbeatInterval: 60_000,
  });
  routeOnlyWhenSubscribed(aedes, () => subscribed);
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
