import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { IClientOptions, MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_BYTES, TokenBucket, exampleEvent, mqttTopic, type DeadLetter } from '@city/protocol';
import { resolveGatewayOptions, type Gateway, type GatewayOptions } from '../index.ts';
import { FrameScanner, guardFrames, openRegistry } from './index.ts';
import { testGateway } from '../../../test/support/gateway.ts';
import { attemptConnect as attempt, closedConnection as closed, connectDevice as connect } from '../../../test/support/mqtt.ts';
import { onTeardown, tempDir as makeTempDir } from '../../../test/support/teardown.ts';

const tempDir = () => makeTempDir('gw-sec-');

interface Setup {
  gateway: Gateway;
  dir: string;
  registryPath: string;
  letters: DeadLetter[];
  logs: { message: string; fields?: Record<string, unknown> }[];
  /** Registers a device through a separate connection to the registry file, as the CLI does. */
  provision(deviceId: string): string;
}

async function startSecure(extra: Partial<GatewayOptions> = {}, auth = true): Promise<Setup> {
  const dir = tempDir();
  const logs: Setup['logs'] = [];
  const registryPath = join(dir, 'devices.db');
  const admin = openRegistry(registryPath);
  onTeardown(() => admin.close());
  // Kafka away (testGateway's default): records stay in the buffer; these tests look at the intake only.
  const gateway = testGateway(
    {
      gatewayId: 'gw-sec',
      buffer: { path: join(dir, 'buffer.db') },
      ...(auth ? { auth: { mode: 'registry', registryPath, recheckMs: 20 } } : {}),
      ...extra,
    },
    (_level, message, fields) => logs.push({ message, ...(fields === undefined ? {} : { fields }) }),
  );
  const letters: DeadLetter[] = [];
  gateway.on('deadletter', (l) => letters.push(l));
  await gateway.start();
  return { gateway, dir, registryPath, letters, logs, provision: (id) => admin.add(id) };
}

async function connectDevice(url: string, deviceId: string, secret: string, extra: IClientOptions = {}): Promise<MqttClient> {
  return connect(url, deviceId, { username: deviceId, password: secret, ...extra });
}

const eventFor = (deviceId: string) => JSON.stringify(exampleEvent('weather', { deviceId, eventId: randomUUID() }));

describe('options', () => {
  it('need a registry path when auth is on, and name the field', () => {
    expect(() => resolveGatewayOptions({ gatewayId: 'g', buffer: { path: '/tmp/x.db' }, auth: { mode: 'registry' } })).toThrow(/\/auth\/registryPath/);
    expect(() => resolveGatewayOptions({ gatewayId: 'g', buffer: { path: '/tmp/x.db' }, auth: { mode: 'ldap' as never } })).toThrow(/\/auth\/mode/);
    expect(() => resolveGatewayOptions({ gatewayId: 'g', buffer: { path: '/tmp/x.db' }, limits: { maxPacketBytes: 100 } })).toThrow(
      /\/limits\/maxPacketBytes/,
    );
    expect(resolveGatewayOptions({ gatewayId: 'g', buffer: { path: '/tmp/x.db' } }).auth.mode).toBe('none');
  });
});

describe('token bucket', () => {
  it('lets a burst through, then the rate', () => {
    // The shared bucket, as device security uses it: one token per connection or publish.
    const bucket = new TokenBucket(2, 3, 0);
    expect([bucket.tryTake(1, 0), bucket.tryTake(1, 0), bucket.tryTake(1, 0), bucket.tryTake(1, 0)]).toEqual([true, true, true, false]);
    expect(bucket.tryTake(1, 499)).toBe(false);
    expect(bucket.tryTake(1, 500)).toBe(true);
    expect(bucket.idle(500)).toBe(false);
    expect(bucket.idle(10_000)).toBe(true);
  });
});

describe('frame guard', () => {
  /** MQTT fixed header: type byte, then the remaining length as a varint. */
  const frame = (length: number): Buffer => {
    const bytes = [0x30];
    let n = length;
    do {
      let byte = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) byte |= 0x80;
      bytes.push(byte);
    } while (n > 0);
    return Buffer.concat([Buffer.from(bytes), Buffer.alloc(length, 7)]);
  };

  it('passes packets split anywhere, and cuts the connection at the first header over the limit', async () => {
    // What is written into the stream comes out of its guarded read(), pulled on 'readable' as aedes does.
    const oversize: number[] = [];
    const guard = guardFrames(new PassThrough(), 1000, '10.0.0.1', (n) => oversize.push(n));
    const received: Buffer[] = [];
    guard.on('readable', () => {
      for (let chunk = guard.read() as Buffer | null; chunk !== null; chunk = guard.read() as Buffer | null) received.push(chunk);
    });
    const good = Buffer.concat([frame(0), frame(200), frame(990), frame(127), frame(128)]);
    for (let i = 0; i < good.length; i += 7) guard.write(good.subarray(i, i + 7));
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.concat(received).equals(good)).toBe(true);
    expect(guard.destroyed).toBe(false);

    const done = new Promise((resolve) => guard.once('close', resolve));
    guard.write(frame(100_000).subarray(0, 2));
    guard.write(frame(100_000).subarray(2, 50));
    await done;
    expect(oversize).toEqual([100_000]);
    // Nothing of the oversize packet reached the reader, not even its header.
    expect(Buffer.concat(received).length).toBe(good.length);
    expect(guard.remoteAddressOfGuarded).toBe('10.0.0.1');
  });

  it('scans split headers: a length varint cut between chunks still counts', () => {
    const scanner = new FrameScanner(1000);
    const big = frame(5000).subarray(0, 3);
    expect(scanner.scan(frame(10))).toBe(-1);
    expect(scanner.scan(big.subarray(0, 2))).toBe(-1);
    expect(scanner.scan(big.subarray(2))).toBe(5000);
  });
});

describe('authentication', () => {
  it('lets a registered device publish and refuses unknown, forged, revoked and mismatched credentials, counting each', async () => {
    const { gateway, provision, registryPath, logs } = await startSecure();
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    const secret = provision('ws-good');
    const good = await connectDevice(url, 'ws-good', secret);
    await good.publishAsync(mqttTopic('ws-good', 'weather'), eventFor('ws-good'), { qos: 1 });
    expect(gateway.stats().accepted).toBe(1);

    const unknown = await attempt(url, { clientId: 'ws-nobody', username: 'ws-nobody', password: 'x'.repeat(32) });
    expect(unknown).toMatchObject({ connected: false, code: 4 });
    const forged = await attempt(url, { clientId: 'ws-good', username: 'ws-good', password: `${secret}x` });
    expect(forged).toMatchObject({ connected: false, code: 4 });
    const anonymous = await attempt(url, { clientId: 'ws-good' });
    expect(anonymous).toMatchObject({ connected: false, code: 4 });
    const mismatch = await attempt(url, { clientId: 'ws-other', username: 'ws-good', password: secret });
    expect(mismatch).toMatchObject({ connected: false, code: 5 });

    provision('ws-old');
    const admin = openRegistry(registryPath);
    const oldSecret = admin.add('ws-old', 'old-secret-0123456789');
    admin.revoke('ws-old');
    admin.close();
    const revoked = await attempt(url, { clientId: 'ws-old', username: 'ws-old', password: oldSecret });
    expect(revoked).toMatchObject({ connected: false, code: 4 });

    const denied = gateway.stats().denied;
    expect(denied).toMatchObject({ 'unknown-device': 1, 'bad-secret': 1, 'no-credentials': 1, 'client-id-mismatch': 1, 'revoked-device': 1 });
    expect(logs).toContainEqual({ message: 'refused: unknown-device', fields: expect.objectContaining({ reason: 'unknown-device', deviceId: 'ws-nobody' }) });
    expect(gateway.stats().accepted).toBe(1);
  });

  it('drops a live connection when the device is revoked from another process or through the gateway', async () => {
    const { gateway, provision, registryPath } = await startSecure();
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    const a = await connectDevice(url, 'cam-a', provision('cam-a'));
    const b = await connectDevice(url, 'cam-b', provision('cam-b'));

    const cli = openRegistry(registryPath);
    onTeardown(() => cli.close());
    cli.revoke('cam-a');
    await closed(a);
    expect(b.connected).toBe(true);

    expect(gateway.revokeDevice('cam-b')).toBe(true);
    await closed(b);
    expect(gateway.revokeDevice('cam-unknown')).toBe(false);
    expect(gateway.stats().denied['revoked-dropped']).toBe(2);
  });

  it('a last will outside the device prefix is refused', async () => {
    const { gateway, provision } = await startSecure();
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    const secret = provision('gps-w');
    const result = await attempt(url, {
      clientId: 'gps-w',
      username: 'gps-w',
      password: secret,
      will: { topic: mqttTopic('gps-victim', 'gps'), payload: Buffer.from('{}'), qos: 1, retain: false },
    });
    expect(result.connected).toBe(false);
    expect(gateway.stats().denied['will-topic']).toBe(1);
  });
});

describe('topic ownership', () => {
  it('dead-letters a publish under another device prefix as acl and closes the connection', async () => {
    const { gateway, provision, letters } = await startSecure();
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    const client = await connectDevice(url, 'veh-1', provision('veh-1'));
    const gone = closed(client);
    client.publish(mqttTopic('veh-2', 'vehicle'), eventFor('veh-2'), { qos: 1 });
    await gone;
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ stage: 'gateway', clientId: 'veh-1', deviceId: 'veh-2', problems: [{ rule: 'acl' }] });
    expect(gateway.stats()).toMatchObject({ accepted: 0, deadLettered: 1 });
    expect(gateway.stats().denied['acl-publish']).toBe(1);
  });

  it('grants subscriptions only under the device prefix', async () => {
    const { gateway, provision } = await startSecure();
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    const client = await connectDevice(url, 'phone-1', provision('phone-1'));
    const granted = await client.subscribeAsync('city/v1/devices/phone-1/commands', { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1]);
    // SUBACK failure (128): mqtt.js turns it into a rejection.
    await expect(client.subscribeAsync('city/v1/devices/+/gps', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await expect(client.subscribeAsync('#', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    expect(client.connected).toBe(true);
    expect(gateway.stats().denied['acl-subscribe']).toBe(2);
  });

  it('routes publishes to a subscriber once one is granted (before that aedes routes nothing)', async () => {
    const { gateway, provision } = await startSecure();
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    const client = await connectDevice(url, 'wx-1', provision('wx-1'));
    const topic = mqttTopic('wx-1', 'weather');
    const received: string[] = [];
    client.on('message', (_topic, payload) => received.push(payload.toString()));
    const first = eventFor('wx-1');
    await client.publishAsync(topic, first, { qos: 1 });
    await client.subscribeAsync(topic, { qos: 1 });
    const second = eventFor('wx-1');
    const delivered = new Promise<void>((resolve) => client.once('message', () => resolve()));
    await client.publishAsync(topic, second, { qos: 1 });
    await delivered;
    expect(received).toEqual([second]);
    expect(gateway.stats()).toMatchObject({ received: 2, accepted: 2 });
  });
});

describe('payload size', () => {
  it('dead-letters an oversize payload with only its head kept, and cuts off a giant packet before it is buffered', async () => {
    const { gateway, provision, letters } = await startSecure({ limits: { maxPayloadBytes: 2048, deadLetterPayloadBytes: 100, maxPacketBytes: 8192 } });
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    const secret = provision('aq-1');
    const client = await connectDevice(url, 'aq-1', secret);
    await client.publishAsync(mqttTopic('aq-1', 'air_quality'), 'y'.repeat(4000), { qos: 1 });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ problems: [{ rule: 'size' }], payload: 'y'.repeat(100), deviceId: 'aq-1', kind: 'air_quality' });
    expect(client.connected).toBe(true);

    const gone = closed(client);
    client.publish(mqttTopic('aq-1', 'air_quality'), Buffer.alloc(4 * 1024 * 1024, 'z'), { qos: 1 });
    await gone;
    expect(gateway.stats().denied).toMatchObject({ 'oversize-payload': 1, 'oversize-packet': 1 });
    expect(letters).toHaveLength(1);

    // The default limit is the protocol's event limit.
    expect(gateway.config.limits.maxPayloadBytes).toBe(2048);
    expect(resolveGatewayOptions({ gatewayId: 'g', buffer: { path: '/tmp/x.db' } }).limits.maxPayloadBytes).toBe(MAX_PAYLOAD_BYTES);
  });
});

describe('rate limits', () => {
  it('closes the connection of a device over its publish rate without acknowledging the extra publish', async () => {
    // 0.001/s: the burst is all there is during the test, whatever the machine's speed.
    const { gateway, provision } = await startSecure({ limits: { publishRate: 0.001, publishBurst: 3 } });
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    const client = await connectDevice(url, 'em-1', provision('em-1'));
    for (let i = 0; i < 3; i++) await client.publishAsync(mqttTopic('em-1', 'weather'), eventFor('em-1'), { qos: 1 });
    const gone = closed(client);
    let acked = false;
    client.publish(mqttTopic('em-1', 'weather'), eventFor('em-1'), { qos: 1 }, (err) => {
      if (!err) acked = true;
    });
    await gone;
    expect(acked).toBe(false);
    expect(gateway.stats()).toMatchObject({ accepted: 3 });
    expect(gateway.stats().denied['publish-rate']).toBe(1);
  });

  it('refuses new connections over the per-address rate before CONNACK', async () => {
    const { gateway } = await startSecure({ limits: { connectRatePerAddress: 0.001, connectBurstPerAddress: 2 } }, false);
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    expect((await attempt(url, { clientId: 'c1' })).connected).toBe(true);
    expect((await attempt(url, { clientId: 'c2' })).connected).toBe(true);
    expect((await attempt(url, { clientId: 'c3' })).connected).toBe(false);
    expect(gateway.stats().denied['connect-rate-address']).toBe(1);
  });

  it('refuses new connections over the gateway-wide rate', async () => {
    const { gateway } = await startSecure({ limits: { connectRate: 0.001, connectBurst: 1 } }, false);
    const url = `mqtt://127.0.0.1:${gateway.port()}`;
    expect((await attempt(url, { clientId: 'g1' })).connected).toBe(true);
    expect((await attempt(url, { clientId: 'g2' })).connected).toBe(false);
    expect(gateway.stats().denied['connect-rate']).toBe(1);
  });
});

describe('listeners', () => {
  it('accepts devices over TLS and over WebSocket, with the same credentials and checks', async () => {
    const certDir = tempDir();
    const certFile = join(certDir, 'cert.pem');
    const keyFile = join(certDir, 'key.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { stdio: 'ignore' },
    );
    const { gateway, provision } = await startSecure({
      tls: { port: 0, certFile, keyFile },
      websocket: { port: 0, path: '/mqtt' },
    });
    const ports = gateway.ports();
    expect(ports.tls).toBeGreaterThan(0);
    expect(ports.websocket).toBeGreaterThan(0);

    const tlsClient = await connectDevice(`mqtts://127.0.0.1:${ports.tls}`, 'gps-tls', provision('gps-tls'), { ca: [readFileSync(certFile)] });
    await tlsClient.publishAsync(mqttTopic('gps-tls', 'weather'), eventFor('gps-tls'), { qos: 1 });

    const wsClient = await connectDevice(`ws://127.0.0.1:${ports.websocket}/mqtt`, 'phone-ws', provision('phone-ws'));
    await wsClient.publishAsync(mqttTopic('phone-ws', 'weather'), eventFor('phone-ws'), { qos: 1 });
    expect(gateway.stats().accepted).toBe(2);

    const refused = await attempt(`ws://127.0.0.1:${ports.websocket}/mqtt`, { clientId: 'phone-ws', username: 'phone-ws', password: 'wrong-secret-0123456789' });
    expect(refused).toMatchObject({ connected: false, code: 4 });
  });

  it('refuses to start with unreadable TLS files, naming the error', async () => {
    const dir = tempDir();
    const gateway = testGateway({ gatewayId: 'gw-sec', tls: { port: 0, certFile: join(dir, 'missing.pem'), keyFile: join(dir, 'missing.key') } });
    await expect(gateway.start()).rejects.toThrow(/TLS certificate or key.*missing\.pem/);
  });
});
