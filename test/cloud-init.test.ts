// The cloud-init example sets the gateway's uplink (brokers, TLS, SASL) through the config file and
// credential files only: unpacked as first boot writes it, the config loads with the CLI's loader, the
// secrets load from their files, and nothing secret is in the config or on a command line.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig, loadUplinkSecurity, openRegistry, runDevicesCommand } from '@city/gateway';
import { USER_DATA, unpackUserData, userDataFiles } from './support/cloud-init.ts';
import { tempDir } from './support/teardown.ts';

describe('cloud-init example', () => {
  it('writes the config, the CA bundle, the SASL password and the environment, none world-readable', () => {
    const files = userDataFiles();
    expect(files.map((f) => f.path)).toEqual([
      '/etc/city-gateway/gateway.json',
      '/etc/city-gateway/kafka/ca.pem',
      '/etc/city-gateway/kafka/sasl-password',
      '/run/city-gateway-first-devices/bus-17',
      '/run/city-gateway-first-devices/air-harbour-3',
      '/etc/city-gateway/environment',
    ]);
    expect(files.map((f) => f.permissions)).toEqual(['0640', '0640', '0640', '0600', '0600', '0640']);
    // Time sync by the service whose flag the gateway reads.
    expect(readFileSync(USER_DATA, 'utf8')).toMatch(/^ {2}ntp_client: systemd-timesyncd$/m);
  });

  it('configures brokers, TLS and SASL for the service from files, and the secrets load from them', () => {
    const root = tempDir('cloud-init-');
    const at = unpackUserData(root, (path, content) => (path.endsWith('sasl-password') ? 'the-uplink-password\n' : content));
    const env = Object.fromEntries(readFileSync(at.get('/etc/city-gateway/environment')!, 'utf8').trim().split('\n').map((l) => l.split('=') as [string, string]));
    const config = loadGatewayConfig({ file: at.get('/etc/city-gateway/gateway.json')!, env });
    expect(config.gatewayId).toBe('gw-harbour-01');
    expect(config.kafka.brokers).toEqual(['kafka-1.city.example:9093', 'kafka-2.city.example:9093']);
    expect(config.kafka.security).toEqual({
      tls: { caFile: at.get('/etc/city-gateway/kafka/ca.pem') },
      sasl: { mechanism: 'scram-sha-512', username: 'gw-harbour-01', passwordFile: at.get('/etc/city-gateway/kafka/sasl-password') },
    });
    expect(JSON.stringify(config)).not.toContain('the-uplink-password');
    const loaded = loadUplinkSecurity(config)!;
    expect(loaded.tls?.ca?.toString()).toBe(readFileSync(at.get('/etc/city-gateway/kafka/ca.pem')!, 'utf8'));
    expect(loaded.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'gw-harbour-01' });
    expect(loaded.sasl!.password!()).toBe('the-uplink-password');
    expect(statSync(at.get('/etc/city-gateway/kafka/sasl-password')!).mode & 0o777).toBe(0o640);
  });

  it('names the file that cannot be read, never its content', () => {
    const root = tempDir('cloud-init-');
    const at = unpackUserData(root);
    const config = loadGatewayConfig({ file: at.get('/etc/city-gateway/gateway.json')!, env: {} });
    const gone = { ...config, kafka: { ...config.kafka, security: { ...config.kafka.security, sasl: { ...config.kafka.security!.sasl!, passwordFile: join(root, 'nope') } } } };
    expect(() => loadUplinkSecurity(gone)).toThrow(`cannot read the SASL password ${join(root, 'nope')}: ENOENT`);
  });

  it('registers the first devices with secrets read from files, none on a command line', async () => {
    const root = tempDir('cloud-init-');
    const at = unpackUserData(root);
    const runcmd = readFileSync(USER_DATA, 'utf8').split('\n').filter((l) => /^ {2}- \[gateway, devices, add,/.test(l));
    expect(runcmd).toHaveLength(2);
    expect(readFileSync(USER_DATA, 'utf8')).not.toMatch(/--secret,/);
    const registry = join(root, 'devices.db');
    const io = { out: () => undefined, err: (t: string) => expect.fail(t) };
    for (const line of runcmd) {
      const words = line.replace(/^ {2}- \[/, '').replace(/\]$/, '').split(', ').slice(1);
      const file = words[words.indexOf('--secret-file') + 1]!;
      expect(runDevicesCommand([...words.slice(1).map((w) => (w === file ? at.get(file)! : w)), '--registry', registry], io)).toBe(0);
    }
    const devices = openRegistry(registry);
    try {
      expect(await devices.verify('bus-17', 'replace-with-bus-17-secret')).toEqual({ ok: true });
      expect(await devices.verify('air-harbour-3', 'replace-with-air-harbour-3-secret')).toEqual({ ok: true });
    } finally {
      devices.close();
    }
  });
});
