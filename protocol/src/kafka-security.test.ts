import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkKafkaSecurity, describeKafkaSecurity, kafkaSecurityFromEnv, loadKafkaSecurity } from './kafka-security.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function file(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kafka-sec-'));
  dirs.push(dir);
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}
const fail = (detail: string) => new Error(`SECRET: ${detail}`);

describe('Kafka security config', () => {
  it('checks what the schema cannot: cert with key, one password source, tokens only for oauthbearer', () => {
    expect(checkKafkaSecurity({ tls: { certFile: 'c.pem' } }, '/kafka/security')).toMatch(/\/kafka\/security\/tls needs both certFile and keyFile/);
    expect(checkKafkaSecurity({ sasl: { mechanism: 'scram-sha-512', username: 'u' } }, '/s')).toMatch(/exactly one of passwordFile or passwordEnv/);
    expect(checkKafkaSecurity({ sasl: { mechanism: 'plain', username: 'u', passwordFile: 'a', passwordEnv: 'B' } }, '/s')).toMatch(/exactly one/);
    expect(checkKafkaSecurity({ sasl: { mechanism: 'plain', passwordFile: 'a' } }, '/s')).toMatch(/\/s\/sasl\/username is required/);
    expect(checkKafkaSecurity({ sasl: { mechanism: 'oauthbearer' } }, '/s')).toMatch(/tokenFile, tokenEnv or a token provider/);
    expect(checkKafkaSecurity({ sasl: { mechanism: 'oauthbearer' } }, '/s', true)).toBeUndefined();
    expect(checkKafkaSecurity(undefined, '/s', true)).toMatch(/no SASL mechanism/);
    expect(checkKafkaSecurity({ tls: { caFile: 'ca.pem', certFile: 'c', keyFile: 'k' }, sasl: { mechanism: 'scram-sha-256', username: 'u', passwordEnv: 'PW' } }, '/s')).toBeUndefined();
  });

  it('reads secrets from files and variables, re-reads tokens, and names what is missing without its value', async () => {
    const ca = file('ca.pem', 'CA-PEM');
    const pw = file('pw', 'hunter2-secret\n');
    const loaded = loadKafkaSecurity({ tls: { caFile: ca }, sasl: { mechanism: 'scram-sha-512', username: 'gw', passwordFile: pw } }, { fail });
    expect(loaded?.tls?.ca?.toString()).toBe('CA-PEM');
    expect(loaded?.sasl?.password?.()).toBe('hunter2-secret');
    // The secret is behind a function: printing the loaded object shows no password.
    expect(JSON.stringify(loaded)).not.toContain('hunter2');

    expect(loadKafkaSecurity({ sasl: { mechanism: 'plain', username: 'u', passwordEnv: 'PW_VAR' } }, { fail, env: { PW_VAR: 'from-env' } })?.sasl?.password?.()).toBe('from-env');
    expect(() => loadKafkaSecurity({ sasl: { mechanism: 'plain', username: 'u', passwordEnv: 'PW_VAR' } }, { fail, env: {} })).toThrow(/SECRET: the SASL password variable PW_VAR is not set/);
    expect(() => loadKafkaSecurity({ tls: { caFile: '/nonexistent/ca.pem' } }, { fail })).toThrow(/cannot read the CA bundle \/nonexistent\/ca.pem: ENOENT/);

    const token = file('token', 'first');
    const oauth = loadKafkaSecurity({ sasl: { mechanism: 'oauthbearer', tokenFile: token } }, { fail });
    expect(await oauth?.sasl?.token?.()).toBe('first');
    writeFileSync(token, 'second');
    expect(await oauth?.sasl?.token?.()).toBe('second');
    let calls = 0;
    const provided = loadKafkaSecurity({ sasl: { mechanism: 'oauthbearer' } }, { fail, tokenProvider: () => `t${++calls}` });
    expect([await provided?.sasl?.token?.(), await provided?.sasl?.token?.()]).toEqual(['t1', 't2']);
    expect(loadKafkaSecurity(undefined, { fail })).toBeUndefined();
  });

  it('takes security from KAFKA_TLS_* / KAFKA_SASL_* variables, naming the password variable rather than copying it', () => {
    expect(kafkaSecurityFromEnv({})).toBeUndefined();
    expect(kafkaSecurityFromEnv({ KAFKA_TLS: '1' })).toEqual({ tls: {} });
    expect(
      kafkaSecurityFromEnv({ KAFKA_TLS_CA_FILE: '/ca.pem', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'gw', KAFKA_SASL_PASSWORD: 'p' }),
    ).toEqual({ tls: { caFile: '/ca.pem' }, sasl: { mechanism: 'scram-sha-512', username: 'gw', passwordEnv: 'KAFKA_SASL_PASSWORD' } });
  });

  it('describes the security in one line without secrets', () => {
    expect(describeKafkaSecurity(undefined)).toBe('PLAINTEXT');
    expect(describeKafkaSecurity({ tls: { caFile: '/ca.pem' }, sasl: { mechanism: 'scram-sha-512', username: 'gw', passwordFile: '/pw' } })).toBe('SASL_SSL, CA /ca.pem, SCRAM-SHA-512 as gw');
  });
});
