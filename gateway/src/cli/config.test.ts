import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { exampleEvent, mqttTopic } from '@city/protocol';
import { loadGatewayConfig, readConfigFile, statusUrlFromConfig } from './config.ts';
import { openRegistry } from './registry.ts';
import { onTeardown, tempDir as makeTempDir } from '../../test/support/teardown.ts';

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
    expect(() => loadGatewayConfig({ file, env: {}, overrides: { mqtt: { port: 70_000 } } })).toThrow(
      /\/mqtt\/port must be <= 65535 \[maximum\] \(after applying flags and environment\)/,
    );
  });
});

const NODE = process.execPath;
const CLI = resolve(import.meta.dirname, 'cli.ts');

interface Running {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnCli(args: string[]): Running {
  const child = spawn(NODE, [CLI, ...args], { env: { ...process.env, KAFKA_BROKERS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  onTeardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, stderr: () => err, exited };
}

async function logLine(run: Running, message: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    for (const line of run.stderr().split('\n')) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.message === message) return entry;
    }
    if (run.child.exitCode !== null) throw new Error(`gateway exited before logging "${message}": ${run.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no "${message}" in ${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
    const run = spawnCli(['start', '--config', file]);
    expect((await run.exited).code).toBe(2);
    expect(run.stderr()).toContain(`${file}: /mqtt/port must be integer`);
    const unknown = spawnCli(['frobnicate']);
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.stderr()).toMatch(/unknown command "frobnicate"/);
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
    const run = spawnCli(['start', '--config', file, '--http', '127.0.0.1:0']);
    const http = portOf((await logLine(run, 'status and metrics listening')).http);
    expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.stderr()).toContain('"message":"shutting down","signal":"SIGTERM"');
    await expect(fetch(`http://127.0.0.1:${http}/healthz`)).rejects.toThrow();

    // The CLI admits registered devices only; the registry sits beside the buffer by default.
    const registry = openRegistry(join(dir, 'gateway-devices.db'));
    const secret = registry.add('ws-cli');
    registry.close();
    const slow = spawnCli(['start', '--config', slowFile, '--http', 'off']);
    const mqttPort = portOf((await logLine(slow, 'gateway listening')).mqtt);
    expect(slow.stderr()).not.toContain('status and metrics listening');
    // One buffered record gives the drain something to wait for.
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      clientId: 'ws-cli',
      username: 'ws-cli',
      password: secret,
      reconnectPeriod: 0,
    });
    await client.publishAsync(mqttTopic('ws-cli', 'weather'), JSON.stringify(exampleEvent('weather', { deviceId: 'ws-cli' })), { qos: 1 });
    await client.endAsync();
    slow.child.kill('SIGINT');
    await logLine(slow, 'shutting down');
    slow.child.kill('SIGINT');
    expect((await slow.exited).code).toBe(130);
    expect(slow.stderr()).toContain('second signal; exiting without finishing shutdown');
  });
});
