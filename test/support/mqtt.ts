// A device's MQTT connection to a gateway under test: no reconnects, ended after the current test.
import mqtt, { type MqttClient } from 'mqtt';
import { onTeardown } from './teardown.ts';

export async function connectDevice(gateway: { port(): number }, clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.port()}`, { clientId, reconnectPeriod: 0 });
  onTeardown(() => client.endAsync());
  return client;
}
