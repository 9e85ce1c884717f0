// The secured uplink against a real broker with SASL_SSL and mutual-TLS listeners (certificates and
// SCRAM users made by the launcher): right credentials deliver, from the gateway and to the sink; a
// wrong password, an unknown CA and plaintext to a TLS listener are refused with the cause named in
// the error code and in /healthz, while the gateway keeps every acknowledged event buffered; fixing the
// cause delivers the backlog. Its own broker: the shared one has no secured listeners.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaTopicSet, silentLog, type KafkaSecurityConfig } from '@city/protocol';
import { createGateway, loadGatewayConfig, type Gateway, type HealthzBody } from '@city/gateway';
import { createSink, queryLake, type Sink } from '@city/cloud';
import { createFleet } from '@city/device-sim';
import { ensureStandardTopics, startKafka, type KafkaCluster } from '@city/deploy/kafka';
import { unpackUserData } from './support/cloud-init.ts';
import { onTeardown } from './support/teardown.ts';

const GW_PASSWORD = `gw-${randomUUID()}`;
const SINK_PASSWORD = `sink-${randomUUID()}`;
/** The SCRAM user the cloud-init example configures. */
const FIRST_BOOT_PASSWORD = `harbour-${randomUUID()}`;
const suffix = `sec${randomUUID().slice(0, 8)}`;
const topics = kafkaTopicSet(suffix);
// Shared by every test of the file (the broker, the sink and the lake outlive each test).
const dir = mkdtempSync(join(tmpdir(), 'city-uplink-sec-'));
const lakeDir = join(dir, 'lake');
let kafka: KafkaCluster;
let sink: Sink | undefined;

beforeAll(async () => {
  kafka = await startKafka({
    secure: { users: [{ name: 'gw', password: GW_PASSWORD }, { name: 'sink', password: SINK_PASSWORD }, { name: 'gw-harbour-01', password: FIRST_BOOT_PASSWORD }] },
  });
  await ensureStandardTopics(kafka.brokers, { suffix });
}, 180_000);
afterAll(async () => {
  await sink?.close();
  await kafka?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const secrets = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, `${content}\n`, { mode: 0o600 });
  return path;
};
const certs = () => kafka.secure!.certificates;

/** A gateway on a buffer of its own (kept across restarts by name), with /healthz on. */
async function gatewayWith(name: string, brokers: string[], security: KafkaSecurityConfig | undefined, extra: { kafkaTokenProvider?: () => string } = {}) {
  const errors: { code: string; message: string }[] = [];
  const gateway: Gateway = createGateway(
    {
      gatewayId: `gw-${name}`,
      mqtt: { host: '127.0.0.1', port: 0 },
      buffer: { path: join(dir, `${name}.db`) },
      kafka: { brokers, compression: 'zstd', requestTimeoutMs: 5_000, ...(security === undefined ? {} : { security }) },
      forward: { minBackoffMs: 100, maxBackoffMs: 1_000 },
      http: { enabled: true, host: '127.0.0.1', port: 0 },
      topics,
      healthIntervalMs: 0,
      ...extra,
    },
    silentLog,
  );
  gateway.on('kafkaError', (err) => errors.push({ code: (err as { code?: string }).code ?? '', message: err.message }));
  onTeardown(() => gateway.close());
  await gateway.start();
  const healthz = async () => (await (await fetch(`http://127.0.0.1:${gateway.httpPort()}/healthz`)).json()) as HealthzBody;
  return { gateway, errors, healthz };
}

async function publish(gateway: Gateway, prefix: string, events = 20): Promise<number> {
  const fleet = createFleet({ url: `mqtt://127.0.0.1:${gateway.port()}`, seed: 3, deviceIdPrefix: prefix, devices: { weather: 2 }, eventsPerDevice: events / 2, ratePerDevice: 200 });
  onTeardown(() => fleet.stop());
  await fleet.start();
  const stats = await fleet.done();
  expect(stats.acknowledged).toBe(events);
  return stats.acknowledged;
}

const lakeCount = async (lakeDir: string, gatewayId: string) =>
  Number((await queryLake(lakeDir, `SELECT count(DISTINCT event_id) AS n FROM weather WHERE gateway_id = '${gatewayId}'`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0]?.n ?? 0);

describe('secured uplink', () => {
  it('sink (SCRAM-SHA-256) and gateway (SCRAM-SHA-512, PLAIN, mutual TLS, OAUTHBEARER hook) deliver with the right credentials', { timeout: 240_000 }, async () => {
    sink = createSink({
      brokers: kafka.secure!.saslSsl,
      security: { tls: { caFile: certs().caFile }, sasl: { mechanism: 'scram-sha-256', username: 'sink', passwordEnv: 'CITY_TEST_SINK_KAFKA_PASSWORD' } },
      groupId: `sink-${suffix}`,
      lakeDir,
      topics,
      maxAgeMs: 500,
      log: silentLog,
    });
    process.env['CITY_TEST_SINK_KAFKA_PASSWORD'] = SINK_PASSWORD;
    await sink.start();

    const pw = secrets('gw.password', GW_PASSWORD);
    const cases: [string, string[], KafkaSecurityConfig | undefined, { kafkaTokenProvider?: () => string }][] = [
      ['scram512', kafka.secure!.saslSsl, { tls: { caFile: certs().caFile }, sasl: { mechanism: 'scram-sha-512', username: 'gw', passwordFile: pw } }, {}],
      ['plain', kafka.secure!.saslSsl, { tls: { caFile: certs().caFile }, sasl: { mechanism: 'plain', username: 'gw', passwordFile: pw } }, {}],
      ['mtls', kafka.secure!.mtls, { tls: { caFile: certs().caFile, certFile: certs().clientCertFile, keyFile: certs().clientKeyFile } }, {}],
      // The broker's unsecured validator takes unsigned tokens: enough to show the provider is called.
      ['oauth', kafka.secure!.saslSsl, { tls: { caFile: certs().caFile }, sasl: { mechanism: 'oauthbearer' } }, { kafkaTokenProvider: () => unsignedToken('gw') }],
    ];
    for (const [name, brokers, security, extra] of cases) {
      const { gateway, errors } = await gatewayWith(name, brokers, security, extra);
      const sent = await publish(gateway, `${suffix}-${name}`);
      await expect.poll(() => gateway.stats().forwarded, { timeout: 60_000 }).toBe(sent);
      expect(errors, name).toEqual([]);
      await expect.poll(() => lakeCount(lakeDir, `gw-${name}`), { timeout: 60_000, interval: 500 }).toBe(sent);
    }
  });

  it('refuses a wrong password, keeps buffering, says why in /healthz, and delivers the backlog once the password file is fixed', { timeout: 120_000 }, async () => {
    const pw = secrets('wrong.password', 'not-the-password');
    const { gateway, errors, healthz } = await gatewayWith('wrongpw', kafka.secure!.saslSsl, { tls: { caFile: certs().caFile }, sasl: { mechanism: 'scram-sha-512', username: 'gw', passwordFile: pw } });
    const sent = await publish(gateway, `${suffix}-wrongpw`);
    await expect.poll(() => errors.length, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(errors[0]).toMatchObject({ code: 'GW_KAFKA_AUTH', message: expect.stringMatching(/SASL authentication refused/) });
    expect(errors.map((e) => e.message).join('\n')).not.toContain('not-the-password');
    const body = await healthz();
    expect(body).toMatchObject({ kafka: 'unreachable', kafkaError: expect.stringMatching(/SASL authentication refused/) });
    expect(gateway.stats()).toMatchObject({ bufferDepth: sent, forwarded: 0 });
    // A new password file is read at the next attempt: no restart.
    secrets('wrong.password', GW_PASSWORD);
    await expect.poll(() => gateway.stats().bufferDepth, { timeout: 60_000 }).toBe(0);
    expect(gateway.stats().forwarded).toBe(sent);
    await expect.poll(async () => (await healthz()).kafka, { timeout: 10_000 }).toBe('reachable');
    await expect.poll(() => lakeCount(lakeDir, 'gw-wrongpw'), { timeout: 60_000, interval: 500 }).toBe(sent);
  });

  it('refuses a broker certificate from an unknown CA, then delivers once the CA bundle is right', { timeout: 120_000 }, async () => {
    const caFile = join(dir, 'ca-bundle.pem');
    copyFileSync(certs().otherCaFile, caFile);
    const { gateway, errors, healthz } = await gatewayWith('unknownca', kafka.secure!.saslSsl, { tls: { caFile }, sasl: { mechanism: 'scram-sha-512', username: 'gw', passwordFile: secrets('gw2.password', GW_PASSWORD) } });
    const sent = await publish(gateway, `${suffix}-unknownca`);
    await expect.poll(() => errors.length, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(errors[0]).toMatchObject({ code: 'GW_KAFKA_TLS', message: expect.stringMatching(/certificate is not trusted.*UNABLE_TO_VERIFY_LEAF_SIGNATURE/) });
    expect(await healthz()).toMatchObject({ kafka: 'unreachable', kafkaError: expect.stringMatching(/not trusted/) });
    expect(gateway.stats().bufferDepth).toBe(sent);
    copyFileSync(certs().caFile, caFile);
    await expect.poll(() => gateway.stats().bufferDepth, { timeout: 60_000 }).toBe(0);
    await expect.poll(() => lakeCount(lakeDir, 'gw-unknownca'), { timeout: 60_000, interval: 500 }).toBe(sent);
  });

  it('refuses plaintext to the TLS listener (and TLS to the plaintext one), then a restart with TLS delivers the backlog', { timeout: 120_000 }, async () => {
    const sasl = { mechanism: 'scram-sha-512' as const, username: 'gw', passwordFile: secrets('gw3.password', GW_PASSWORD) };
    const first = await gatewayWith('plaintext', kafka.secure!.saslSsl, { sasl });
    const sent = await publish(first.gateway, `${suffix}-plaintext`);
    await expect.poll(() => first.errors.length, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(first.errors[0]).toMatchObject({ code: 'GW_KAFKA_TLS', message: expect.stringMatching(/TLS listener spoken to in plaintext/) });
    expect(await first.healthz()).toMatchObject({ kafka: 'unreachable', kafkaError: expect.stringMatching(/plaintext/) });
    expect(first.gateway.stats().bufferDepth).toBe(sent);
    await first.gateway.close();

    const wrongWay = await gatewayWith('tls-to-plain', kafka.brokers, { tls: { caFile: certs().caFile } });
    await publish(wrongWay.gateway, `${suffix}-tls-to-plain`, 2);
    await expect.poll(() => wrongWay.errors.length, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(wrongWay.errors[0]).toMatchObject({ code: 'GW_KAFKA_TLS', message: expect.stringMatching(/does not speak TLS/) });
    await wrongWay.gateway.close();

    // Same buffer, TLS on: what was acknowledged before goes now.
    const fixed = await gatewayWith('plaintext', kafka.secure!.saslSsl, { tls: { caFile: certs().caFile }, sasl });
    await expect.poll(() => fixed.gateway.stats().bufferDepth, { timeout: 60_000 }).toBe(0);
    expect(fixed.gateway.stats().forwarded).toBe(sent);
    await expect.poll(() => lakeCount(lakeDir, 'gw-plaintext'), { timeout: 60_000, interval: 500 }).toBe(sent);
  });

  it('a gateway configured by the cloud-init example (config file and credential files only) delivers over SASL_SSL with SCRAM-SHA-512', { timeout: 120_000 }, async () => {
    // First boot's files, with this broker's address, CA and the user's password in place of the placeholders.
    const root = join(dir, 'first-boot');
    const at = unpackUserData(root, (path, content) => {
      if (path.endsWith('/ca.pem')) return readFileSync(certs().caFile, 'utf8');
      if (path.endsWith('/sasl-password')) return `${FIRST_BOOT_PASSWORD}\n`;
      if (path.endsWith('/gateway.json')) return content.replace(/"brokers": \[[^\]]*\]/, `"brokers": ${JSON.stringify(kafka.secure!.saslSsl)}`);
      return content;
    });
    // The package's StateDirectory, where the config keeps the buffer.
    mkdirSync(join(root, 'var', 'lib', 'city-gateway'), { recursive: true });
    const config = loadGatewayConfig({ file: at.get('/etc/city-gateway/gateway.json')!, env: {} });
    expect(config.buffer.path).toBe(join(root, 'var', 'lib', 'city-gateway', 'buffer.db'));
    expect(config.kafka.security?.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'gw-harbour-01' });
    // Only what this test needs changed: ports, topics, and devices let in without a registry.
    const gateway = createGateway(
      { ...config, mqtt: { host: '127.0.0.1', port: 0 }, http: { enabled: false, host: '127.0.0.1', port: 0 }, auth: { mode: 'none' }, topics, healthIntervalMs: 0 },
      silentLog,
    );
    const errors: Error[] = [];
    gateway.on('kafkaError', (err) => errors.push(err));
    onTeardown(() => gateway.close());
    await gateway.start();
    const sent = await publish(gateway, `${suffix}-firstboot`);
    await expect.poll(() => gateway.stats().forwarded, { timeout: 60_000 }).toBe(sent);
    expect(errors).toEqual([]);
    await expect.poll(() => lakeCount(lakeDir, 'gw-harbour-01'), { timeout: 60_000, interval: 500 }).toBe(sent);
  });

  it('the sink refuses a wrong password, an unknown CA and plaintext to TLS with the cause named', { timeout: 120_000 }, async () => {
    const bad: [string, string[], KafkaSecurityConfig, string, RegExp][] = [
      ['wrongpw', kafka.secure!.saslSsl, { tls: { caFile: certs().caFile }, sasl: { mechanism: 'scram-sha-256', username: 'sink', passwordFile: secrets('sink-wrong.password', 'wrong-wrong') } }, 'CLD_KAFKA_AUTH', /SASL authentication refused/],
      ['unknownca', kafka.secure!.saslSsl, { tls: { caFile: certs().otherCaFile }, sasl: { mechanism: 'scram-sha-256', username: 'sink', passwordFile: secrets('sink.password', SINK_PASSWORD) } }, 'CLD_KAFKA_TLS', /not trusted/],
      ['plaintext', kafka.secure!.saslSsl, { sasl: { mechanism: 'scram-sha-256', username: 'sink', passwordFile: secrets('sink.password', SINK_PASSWORD) } }, 'CLD_KAFKA_TLS', /plaintext/],
    ];
    for (const [name, brokers, security, code, message] of bad) {
      const refused = createSink({ brokers, security, groupId: `sink-bad-${name}-${suffix}`, lakeDir: join(dir, `lake-${name}`), topics, log: silentLog });
      onTeardown(() => refused.close().catch(() => undefined));
      await expect(refused.start(), name).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    }
  });
});

/** An unsigned JWT (alg none) with a subject, as the broker's unsecured OAUTHBEARER validator accepts. */
function unsignedToken(sub: string): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none' })}.${part({ sub, iat: now, exp: now + 3600 })}.`;
}
