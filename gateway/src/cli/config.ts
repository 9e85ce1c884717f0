// Config file loading for `gateway start` and `gateway status`: one JSON file with the same shape as
// the gateway options, validated by the same schema; flags and environment override it.
import { readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { describeOptionProblems, kafkaSecurityFromEnv, mergeDefaults } from '@city/protocol';
import { SECURE_AUTH } from '../broker/index.ts';
import { gatewayErrors } from '../errors.ts';
import { gatewayOptions, type GatewayConfig } from '../options.ts';

/** A gateway started from the command line is a field gateway: status endpoint on, only registered devices. */
export const CLI_DEFAULTS = { http: { enabled: true }, buffer: { path: 'gateway-buffer.db' }, auth: { mode: SECURE_AUTH.mode } } as const;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads and checks a config file on its own, so every error names the file and the field
 * (`/mqtt/port must be integer`, `/mqtt/prot is not a known option`). Required fields
 * may be left to flags or the environment. A relative buffer path is taken relative to the file.
 */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw gatewayErrors.create('GW_CONFIG_FILE', `${path}: ${(err as Error).message}`, err);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw gatewayErrors.create('GW_CONFIG_FILE', `${path}: not valid JSON: ${(err as Error).message}`, err);
  }
  if (!isRecord(value)) throw gatewayErrors.create('GW_CONFIG_FILE', `${path}: (root) must be a JSON object`);
  // Stand-ins only for the fields flags may still supply; anything the file says is checked as written.
  const problems = gatewayOptions.problems({ gatewayId: 'config-check', buffer: { path: 'config-check.db' } }, value);
  if (problems.length > 0) throw gatewayErrors.create('GW_CONFIG_FILE', `${path}: ${describeOptionProblems(problems)}`);
  // Files the config names are relative to the config file, wherever the gateway is started from.
  const near = (file: string) => (isAbsolute(file) ? file : resolve(dirname(resolve(path)), file));
  let out = value;
  if (isRecord(out.buffer) && typeof out.buffer.path === 'string') out = { ...out, buffer: { ...out.buffer, path: near(out.buffer.path) } };
  if (isRecord(out.auth) && typeof out.auth.registryPath === 'string') out = { ...out, auth: { ...out.auth, registryPath: near(out.auth.registryPath) } };
  for (const key of ['certFile', 'keyFile'] as const) {
    if (isRecord(out.tls) && typeof out.tls[key] === 'string') out = { ...out, tls: { ...out.tls, [key]: near(out.tls[key] as string) } };
  }
  // The uplink's CA, client certificate and secret files too (first boot writes them beside the config).
  const security = isRecord(out.kafka) && isRecord(out.kafka.security) ? out.kafka.security : undefined;
  if (security !== undefined && isRecord(out.kafka)) {
    const files = (part: unknown, keys: readonly string[]): unknown =>
      isRecord(part) ? Object.fromEntries(Object.entries(part).map(([k, v]) => [k, keys.includes(k) && typeof v === 'string' ? near(v) : v])) : part;
    const resolved = { ...security, tls: files(security.tls, ['caFile', 'certFile', 'keyFile']), sasl: files(security.sasl, ['passwordFile', 'tokenFile']) };
    for (const k of ['tls', 'sasl'] as const) if (resolved[k] === undefined) delete resolved[k];
    out = { ...out, kafka: { ...out.kafka, security: resolved } };
  }
  return out;
}

export interface ConfigSources {
  /** JSON config file. */
  file?: string;
  /** From the environment: GATEWAY_ID, KAFKA_BROKERS (HOSTNAME only when nothing names the gateway). */
  env?: Readonly<Record<string, string | undefined>>;
  /** From flags; win over everything. */
  overrides?: unknown;
}

/** Layers CLI defaults < file < environment < flags and validates the result once. */
export function loadGatewayConfig(sources: ConfigSources): GatewayConfig {
  const env = sources.env ?? {};
  const fromFile = sources.file === undefined ? {} : readConfigFile(sources.file);
  const fromEnv: Record<string, unknown> = {};
  if (env.GATEWAY_ID) fromEnv.gatewayId = env.GATEWAY_ID;
  if (env.KAFKA_BROKERS) fromEnv.kafka = { brokers: env.KAFKA_BROKERS.split(',').map((b) => b.trim()) };
  const security = kafkaSecurityFromEnv(env);
  if (security !== undefined) fromEnv.kafka = { ...(fromEnv.kafka as object | undefined), security };
  let merged = [CLI_DEFAULTS, fromFile, fromEnv, sources.overrides ?? {}].reduce<unknown>((acc, layer) => mergeDefaults(acc, layer), {});
  if (isRecord(merged) && merged.gatewayId === undefined) merged = { ...merged, gatewayId: env.HOSTNAME ?? 'gateway' };
  // The registry lives beside the buffer unless the config names it (a separate file: it survives a corrupt buffer).
  if (isRecord(merged) && isRecord(merged.auth) && merged.auth.mode === 'registry' && merged.auth.registryPath === undefined) {
    const bufferPath = isRecord(merged.buffer) && typeof merged.buffer.path === 'string' ? merged.buffer.path : 'gateway-buffer.db';
    merged = { ...merged, auth: { ...merged.auth, registryPath: join(dirname(bufferPath), basename(SECURE_AUTH.registryPath)) } };
  }
  const problems = gatewayOptions.problems(merged);
  if (problems.length > 0) throw gatewayErrors.create('GW_OPTIONS_INVALID', `${describeOptionProblems(problems)} (after applying flags and environment)`);
  return gatewayOptions.resolveLayers(merged) as GatewayConfig;
}

/** Where `gateway status` finds a gateway configured by this file: its HTTP listener, loopback if bound to all. */
export function statusUrlFromConfig(config: GatewayConfig): string {
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
}
