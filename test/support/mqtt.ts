// Devices' MQTT connections to a gateway under test: no reconnects, ended after the current test.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { onTeardown } from './teardown.ts';

const urlOf = (to: { port(): number } | string): string => (typeof to === 'string' ? to : `mqtt://127.0.0.1:${to.port()}`);

export type ConnectAttempt = { client: MqttClient; connected: true } | { client: MqttClient; connected: false; code: number | undefined };

/** Connects and reports how it went: CONNACK accepted, CONNACK refused (its code), or closed without CONNACK. */
export function attemptConnect(to: { port(): number } | string, options: IClientOptions): Promise<ConnectAttempt> {
  const client = mqtt.connect(urlOf(to), { reconnectPeriod: 0, connectTimeout: 30_000, ...options });
  onTeardown(() => client.endAsync(true));
  return new Promise((resolve) => {
    client.once('connect', () => resolve({ client, connected: true }));
    client.once('error', (err) => resolve({ client, connected: false, code: (err as Error & { code?: number }).code }));
    client.once('close', () => resolve({ client, connected: false, code: undefined }));
  });
}

/** A connected device (a gateway, or a URL such as mqtts://… or ws://…); fails when the gateway refuses it. */
export async function connectDevice(to: { port(): number } | string, clientId: string, options: IClientOptions = {}): Promise<MqttClient> {
  const result = await attemptConnect(to, { clientId, ...options });
  if (!result.connected) throw new Error(`device ${clientId} could not connect (code ${result.code})`);
  return result.client;
}

/** Resolves once the connection is closed (by the gateway, or already). */
export function closedConnection(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.disconnected ? resolve() : client.once('close', () => resolve())));
}
