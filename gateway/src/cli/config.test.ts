import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { exampleEvent, mqttTopic } from '@city/protocol';
import { openRegistry } from '../broker/index.ts';
import { loadGatewayConfig, readConfigFile, statusUrlFromConfig } from './config.ts';
import { GATEWAY_USAGE, main } from './main.ts';
import { runCli, spawnCli } from '../../../test/support/cli.ts';
import { gatewayLogLine } from '../../../test/support/gateway.ts';
import { connectDevice } from '../../../test/support/mqtt.ts';
import { tempDir as makeTempDir } from '../../../test/support/teardown.ts';

const tempDir = () => makeTempDir('gw-config-');

function configFile(content: unknown, dir = tempDir()): string {
  const path = join(dir, 'gateway.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('config file', () => {
  it('names the file and the field for bad JSON, unknown keys and wrong types', () => {
    const bad = configFile('{"gatewayId": "gw-1",, }');
    expect(() => readConfigFile(bad)).toThrow(expect.objectContaining({ code: 'GW_CONFIG_FILE', message: expect.stringContaining(`${bad}: not valid JSON`) }));
    expect(() => readConfigFile(configFile({ mqtt: { prot: 1883 } }))).toThrow(/gateway\.json: \/mqtt\/prot is not a known option \[additionalProperties\]/);
    expect(() => readConfigFile(configFile({ healthInterval: 5 }))).toThrow(/\/healthInterval is not a known option/);
    expect(() => readConfigFile(configFile({ mqtt: { port: '1883' } }))).toThrow(/\/mqtt\/port must be integer/);
    expect(() => readConfigFile(configFile({ http: { enabled: 'yes' } }))).toThrow(/\/http\/enabled must be boolean/);
    expect(() => readConfigFile(configFile({ buffer: { durability: 'sometimes' } }))).toThrow(/\/buffer\/durability/);
    expect(() => readConfigFile(configFile({ gatewayId: 'has space' }))).toThrow(/\/gatewayId must match pattern/);
    expect(() => readConfigFile(configFile([1, 2]))).toThrow(/\(root\) must be a JSON object/);
    expect(() => readConfigFile(join(tempDir(), 'missing.json'))).toThrow(expect.objectContaining({ code: 'GW_CONFIG_FILE', message: expect.stringMatching(/missing\.json: ENOENT/) }));
  });

  it('layers CLI defaults < file < environment < flags, with a buffer path relative to the file', () => {
    const dir = tempDir();
    const file = configFile(
      { gatewayId: 'gw-file', buffer: { path: 'data/buffer.db' }, mqtt: { port: 1884 }, kafka: { brokers: ['file:9092'] }, http: { port: 9999 } },
      dir,
    );
    const fromFile = loadGatewayConfig({ file, env: {} });
    expect(fromFile).toMatchObject({ gatewayId: 'gw-file', mqtt: { port: 1884 }, kafka: { brokers: ['file:9092'] } });
    expect(fromFile.buffer.path).toBe(resolve(dir, 'data/buffer.db'));
    // The library keeps HTTP off; the CLI serves status unless told not to, on loopback.
    expect(fromFile.http).toEqual({ enabled: true, host: '127.0.0.1', port: 9999 });
    expect(statusUrlFromConfig(fromFile)).toBe('http://127.0.0.1:9999');

    const layered = loadGatewayConfig({
      file,
      env: { GATEWAY_ID: 'gw-env', KAFKA_BROKERS: 'env1:9092, env2:9092', HOSTNAME: 'host-1' },
      overrides: { mqtt: { port: 1999 }, http: { enabled: false }, buffer: { path: undefined } },
    });
    expect(layered).toMatchObject({ gatewayId: 'gw-env', mqtt: { port: 1999 }, kafka: { brokers: ['env1:9092', 'env2:9092'] } });
    expect(layered.http.enabled).toBe(false);
    expect(loadGatewayConfig({ file, env: {}, overrides: { gatewayId: 'gw-flag' } }).gatewayId).toBe('gw-flag');
    expect(loadGatewayConfig({ env: { HOSTNAME: 'pi-17' } }).gatewayId).toBe('pi-17');
    // The uplink's files are relative to the config file too.
    const secDir = tempDir();
    const secured = configFile({ gatewayId: 'gw-sec', kafka: { security: { tls: { caFile: 'kafka/ca.pem', certFile: '/abs/c.pem', keyFile: 'k.pem' }, sasl: { mechanism: 'plain', username: 'u', passwordFile: 'kafka/pw' } } } }, secDir);
    expect(loadGatewayConfig({ file: secured, env: {} }).kafka.security).toEqual({
      tls: { caFile: resolve(secDir, 'kafka/ca.pem'), certFile: '/abs/c.pem', keyFile: resolve(secDir, 'k.pem') },
      sasl: { mechanism: 'plain', username: 'u', passwordFile: resolve(secDir, 'kafka/pw') },
    });
    expect(() => loadGatewayConfig({ file, env: {}, overrides: { mqtt: { port: 70_000 } } })).toThrow(
      /\/mqtt\/port must be <= 65535 \[maximum\] \(after applying flags and environment\)/,
    );
  });
});

const CLI = join(import.meta.dirname, '../cli.ts');

const portOf = (address: unknown): number => Number(String(address).split(':').pop());

describe('CLI security defaults', () => {
  it('admits registered devices only, with the registry beside the buffer unless the file names it', () => {
    const dir = tempDir();
    const fromFlags = loadGatewayConfig({ env: {}, overrides: { gatewayId: 'gw-1', buffer: { path: join(dir, 'b.db') } } });
    expect(fromFlags.auth).toMatchObject({ mode: 'registry', registryPath: join(dir, 'gateway-devices.db') });
    const file = join(dir, 'gw.json');
    writeFileSync(file, JSON.stringify({ gatewayId: 'gw-1', auth: { mode: 'registry', registryPath: 'keys/devices.db' } }));
    expect(loadGatewayConfig({ file, env: {} }).auth.registryPath).toBe(join(dir, 'keys/devices.db'));
  });
});

describe('gateway start (CLI)', () => {
  it('refuses a bad config file with the field named, before starting anything', async () => {
    const file = configFile({ gatewayId: 'gw-cli', mqtt: { port: 'x' } });
    const [bad, unknown] = await Promise.all([runCli(CLI, ['start', '--config', file]), runCli(CLI, ['frobnicate'])]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`GW_CONFIG_FILE: invalid gateway config file: ${file}: /mqtt/port must be integer`);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/GW_USAGE: invalid command line: unknown command "frobnicate"/);
  });

  it('closes in order on SIGTERM, HTTP listener included; a second signal exits at once', async () => {
    const dir = tempDir();
    const base = {
      gatewayId: 'gw-cli',
      mqtt: { host: '127.0.0.1', port: 0 },
      buffer: { path: 'buffer.db', minFreeDiskBytes: 0 },
      kafka: { brokers: ['127.0.0.1:1'], requestTimeoutMs: 200 },
      drainOnCloseMs: 0,
      healthIntervalMs: 0,
    };
    const file = configFile(base, dir);
    // Kafka away and a long drain: the second gateway is still draining when the second signal comes.
    const slowFile = join(dir, 'slow.json');
    writeFileSync(slowFile, JSON.stringify({ ...base, buffer: { path: 'slow.db', minFreeDiskBytes: 0 }, drainOnCloseMs: 60_000, shutdownTimeoutMs: 90_000 }));
    const run = spawnCli(CLI, ['start', '--config', file, '--http', '127.0.0.1:0']);
    const http = portOf((await gatewayLogLine(run, 'status and metrics listening')).http);
    expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200);
    run.signal('SIGTERM');
    expect(await run.exited).toMatchObject({ code: 0, signal: null });
    expect(run.stderr()).toContain('"message":"shutting down","signal":"SIGTERM"');
    await expect(fetch(`http://127.0.0.1:${http}/healthz`)).rejects.toThrow();

    // The CLI admits registered devices only; the registry sits beside the buffer by default.
    const registry = openRegistry(join(dir, 'gateway-devices.db'));
    const secret = registry.add('ws-cli');
    registry.close();
    const slow = spawnCli(CLI, ['start', '--config', slowFile, '--http', 'off']);
    const mqttPort = portOf((await gatewayLogLine(slow, 'gateway listening')).mqtt);
    expect(slow.stderr()).not.toContain('status and metrics listening');
    // One buffered record gives the drain something to wait for.
    const client = await connectDevice(`mqtt://127.0.0.1:${mqttPort}`, 'ws-cli', { username: 'ws-cli', password: secret });
    await client.publishAsync(mqttTopic('ws-cli', 'weather'), JSON.stringify(exampleEvent('weather', { deviceId: 'ws-cli' })), { qos: 1 });
    await client.endAsync();
    slow.signal('SIGINT');
    await gatewayLogLine(slow, 'shutting down');
    slow.signal('SIGINT');
    expect((await slow.exited).code).toBe(130);
    expect(slow.stderr()).toContain('second signal; exiting without finishing shutdown');
  });
});

describe('gateway --help', () => {
  /** Runs the command line in this process, with what it prints on stdout and stderr. */
  async function inProcess(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
    try {
      return { code: await main(argv), stdout, stderr };
    } finally {
      vi.restoreAllMocks();
    }
  }

  it('prints the usage of every command and subcommand on stdout and exits 0, starting nothing', async () => {
    for (const [argv, usage] of [
      [['--help'], /^usage: gateway <command>/],
      [['help'], /^usage: gateway <command>/],
      [['start', '--help'], /^usage: gateway start \[options\][\s\S]*--auth MODE/],
      [['--port', '1883', '-h'], /^usage: gateway start/],
      [['status', '--help'], /^usage: gateway status[\s\S]*exit code: 0 healthy, 1 unhealthy, 3 unreachable, 2 bad usage or config/],
      [['devices', '--help'], /^usage: gateway devices <command>/],
      [['devices', 'add', '--help'], /^usage: gateway devices add <id>/],
      [['devices', 'list', '--help'], /^usage: gateway devices list/],
      [['devices', 'revoke', '--help'], /^usage: gateway devices revoke <id>/],
    ] as const) {
      const result = await inProcess([...argv]);
      expect(result, argv.join(' ')).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout, argv.join(' ')).toMatch(usage);
    }
  });

  it('answers a usage error with exit 2 and the usage of the command', async () => {
    const result = await inProcess(['status', '--frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^gateway: GW_USAGE: invalid command line: Unknown option '--frobnicate'[\s\S]*usage: gateway status/);
    const auth = await inProcess(['start', '--auth', 'maybe']);
    expect(auth.code).toBe(2);
    expect(auth.stderr).toContain('--auth must be "registry" or "none", got "maybe"');
  });

  it('exits 0 from the process too', async () => {
    const result = await runCli(CLI, ['--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(`${GATEWAY_USAGE}\n`);
  });
});

describe('gateway start --auth', () => {
  it('none opens the gateway to any client (a lab gateway) and says so; registry is the default', () => {
    expect(loadGatewayConfig({ env: {}, overrides: { auth: { mode: 'none' } } }).auth.mode).toBe('none');
    expect(loadGatewayConfig({ env: {} }).auth.mode).toBe('registry');
  });

  it('none admits an unregistered device', async () => {
    const dir = tempDir();
    const run = spawnCli(CLI, ['start', '--id', 'gw-lab', '--host', '127.0.0.1', '--port', '0', '--buffer', join(dir, 'b.db'), '--brokers', '127.0.0.1:1', '--http', 'off', '--auth', 'none', '--health-interval', '0']);
    const warning = await gatewayLogLine(run, 'auth.mode is "none": any client may connect');
    expect(warning).toMatchObject({ level: 'warn', auth: 'none' });
    const mqttPort = portOf((await gatewayLogLine(run, 'gateway listening')).mqtt);
    const client = await connectDevice(`mqtt://127.0.0.1:${mqttPort}`, 'ws-lab');
    await client.publishAsync(mqttTopic('ws-lab', 'weather'), JSON.stringify(exampleEvent('weather', { deviceId: 'ws-lab' })), { qos: 1 });
    run.signal('SIGTERM');
    expect((await run.exited).code).toBe(0);
  });
});
