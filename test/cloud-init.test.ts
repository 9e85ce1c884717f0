// The cloud-init example sets the gateway's uplink (brokers, TLS, SASL) through the config file and
// credential files only: unpacked as first boot writes it, the config loads with the CLI's loader, the
// secrets load from their files, and nothing secret is in the config or on a command line.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig, loadUplinkSecurity } from '@city/gateway';
import { USER_DATA, unpackUserData, userDataFiles } from './support/cloud-init.ts';
import { tempDir } from './support/teardown.ts';

describe('cloud-init example', () => {
  it('writes the config, the CA bundle, the SASL password and the environment, none world-readable', () => {
    const files = userDataFiles();
    expect(files.map((f) => f.path)).toEqual([
      '/etc/city-gateway/gateway.json',
      '/etc/city-gateway/kafka/ca.pem',
      '/etc/city-gateway/kafka/sasl-password',
      '/etc/city-gateway/environment',
    ]);
    expect(files.every((f) => f.permissions === '0640')).toBe(true);
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
});
