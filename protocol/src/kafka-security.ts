// Kafka uplink security, one schema for the gateway's producer and the sink's consumer: TLS with a CA
// bundle and an optional client certificate (mutual TLS), and SASL PLAIN, SCRAM-SHA-256/512 or
// OAUTHBEARER. Config holds only where a secret is (a file or an environment variable), never the
// secret, so a config printed or logged shows nothing to hide; loadKafkaSecurity reads them.
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from './schemas.ts';

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

const File = Type.String({ minLength: 1 });
const EnvName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' });

export const KafkaTls = Type.Object(
  {
    /** PEM bundle of the CAs that sign the brokers' certificates; absent = Node's built-in CAs (cloud Kafka). */
    caFile: Type.Optional(File),
    /** Client certificate and key (PEM) for mutual TLS; both or neither. */
    certFile: Type.Optional(File),
    keyFile: Type.Optional(File),
    /** Host name the broker's certificate must carry, when it is not the one dialled. */
    serverName: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

export const KafkaSasl = Type.Object(
  {
    mechanism: StringEnum(SASL_MECHANISMS),
    /** PLAIN and SCRAM. */
    username: Type.Optional(Type.String({ minLength: 1 })),
    /** PLAIN and SCRAM: the password is read from this file (trailing newline dropped) … */
    passwordFile: Type.Optional(File),
    /** … or this environment variable. */
    passwordEnv: Type.Optional(EnvName),
    /**
     * OAUTHBEARER without a token provider in code: a token someone else refreshes, read again for every
     * connection, from a file or a variable. Code can pass a provider instead (AWS MSK IAM, Entra).
     */
    tokenFile: Type.Optional(File),
    tokenEnv: Type.Optional(EnvName),
  },
  { additionalProperties: false },
);

export const KafkaSecurity = Type.Object({ tls: Type.Optional(KafkaTls), sasl: Type.Optional(KafkaSasl) }, { additionalProperties: false });
export type KafkaSecurityConfig = Static<typeof KafkaSecurity>;

/** An OAUTHBEARER token, fetched whenever a connection authenticates (e.g. an MSK IAM or Entra token). */
export type OAuthBearerTokenProvider = () => string | Promise<string>;

/** Rules the schema cannot say; undefined when `security` is fine. `at` is the option path, for the message. */
export function checkKafkaSecurity(security: KafkaSecurityConfig | undefined, at: string, hasTokenProvider = false): string | undefined {
  const tls = security?.tls;
  if (tls !== undefined && (tls.certFile === undefined) !== (tls.keyFile === undefined)) return `${at}/tls needs both certFile and keyFile for mutual TLS, or neither`;
  const sasl = security?.sasl;
  if (sasl === undefined) return hasTokenProvider ? `${at}/sasl: a token provider was given but no SASL mechanism (set mechanism oauthbearer)` : undefined;
  const password = [sasl.passwordFile, sasl.passwordEnv].filter((v) => v !== undefined).length;
  const token = [sasl.tokenFile, sasl.tokenEnv].filter((v) => v !== undefined).length + (hasTokenProvider ? 1 : 0);
  if (sasl.mechanism === 'oauthbearer') {
    if (password > 0 || sasl.username !== undefined) return `${at}/sasl: oauthbearer takes a token (tokenFile, tokenEnv or a provider), not a username or password`;
    if (token !== 1) return `${at}/sasl: oauthbearer needs exactly one of tokenFile, tokenEnv or a token provider`;
    return undefined;
  }
  if (token > 0) return `${at}/sasl: ${sasl.mechanism} takes a username and password, not a token`;
  if (sasl.username === undefined) return `${at}/sasl/username is required for ${sasl.mechanism}`;
  if (password !== 1) return `${at}/sasl: ${sasl.mechanism} needs exactly one of passwordFile or passwordEnv (a password is never given on the command line or in the config)`;
  return undefined;
}

/** Security with its secrets loaded: client-neutral, mapped by each package onto its Kafka client. */
export interface LoadedKafkaSecurity {
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; serverName?: string };
  sasl?: {
    mechanism: SaslMechanism;
    username?: string;
    /** A function, so the secret is not a field a log or JSON.stringify would print. */
    password?: () => string;
    token?: () => Promise<string>;
  };
}

export interface LoadOptions {
  tokenProvider?: OAuthBearerTokenProvider;
  env?: NodeJS.ProcessEnv;
  /** The caller's error for a secret that cannot be read (its catalog's code); the detail names the file or variable, never the value. */
  fail: (detail: string, cause?: unknown) => Error;
}

/** Reads the files and variables `security` names (TLS files and passwords now, tokens per connection). */
export function loadKafkaSecurity(security: KafkaSecurityConfig | undefined, options: LoadOptions): LoadedKafkaSecurity | undefined {
  if (security === undefined || (security.tls === undefined && security.sasl === undefined)) return undefined;
  const env = options.env ?? process.env;
  const readFile = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw options.fail(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
    }
  };
  const secretOf = (what: string, file: string | undefined, name: string | undefined): string => {
    const value = file !== undefined ? readFile(what, file).toString('utf8').replace(/\r?\n$/, '') : env[name ?? ''];
    if (value === undefined || value === '') throw options.fail(file !== undefined ? `${what} file ${file} is empty` : `${what} variable ${name ?? ''} is not set or empty`);
    return value;
  };
  const loaded: LoadedKafkaSecurity = {};
  const tls = security.tls;
  if (tls !== undefined) {
    loaded.tls = {
      ...(tls.caFile === undefined ? {} : { ca: readFile('the CA bundle', tls.caFile) }),
      ...(tls.certFile === undefined ? {} : { cert: readFile('the client certificate', tls.certFile) }),
      ...(tls.keyFile === undefined ? {} : { key: readFile('the client key', tls.keyFile) }),
      ...(tls.serverName === undefined ? {} : { serverName: tls.serverName }),
    };
  }
  const sasl = security.sasl;
  if (sasl !== undefined) {
    if (sasl.mechanism === 'oauthbearer') {
      const provider = options.tokenProvider;
      const token = provider !== undefined ? async () => provider() : async () => secretOf('the OAUTHBEARER token', sasl.tokenFile, sasl.tokenEnv);
      // A token from a file or variable must be there at start, like a password.
      if (provider === undefined) secretOf('the OAUTHBEARER token', sasl.tokenFile, sasl.tokenEnv);
      loaded.sasl = { mechanism: sasl.mechanism, token };
    } else {
      const password = secretOf('the SASL password', sasl.passwordFile, sasl.passwordEnv);
      loaded.sasl = { mechanism: sasl.mechanism, ...(sasl.username === undefined ? {} : { username: sasl.username }), password: () => password };
    }
  }
  return loaded;
}

/** One line for logs and status: how the uplink is secured, with no secret in it. */
export function describeKafkaSecurity(security: KafkaSecurityConfig | undefined): string {
  const tls = security?.tls;
  const sasl = security?.sasl;
  const protocol = `${tls === undefined ? (sasl === undefined ? 'PLAINTEXT' : 'SASL_PLAINTEXT') : sasl === undefined ? 'SSL' : 'SASL_SSL'}`;
  const parts = [protocol];
  if (tls !== undefined) parts.push(tls.caFile === undefined ? 'system CAs' : `CA ${tls.caFile}`, ...(tls.certFile === undefined ? [] : [`client certificate ${tls.certFile}`]));
  if (sasl !== undefined) parts.push(`${sasl.mechanism.toUpperCase()}${sasl.username === undefined ? '' : ` as ${sasl.username}`}`);
  return parts.join(', ');
}

/** The environment variables kafkaSecurityFromEnv reads (for service units and container images). */
export const KAFKA_SECURITY_ENV = {
  caFile: 'KAFKA_TLS_CA_FILE',
  certFile: 'KAFKA_TLS_CERT_FILE',
  keyFile: 'KAFKA_TLS_KEY_FILE',
  /** Set to 1 for TLS with Node's built-in CAs (no CA file). */
  tls: 'KAFKA_TLS',
  mechanism: 'KAFKA_SASL_MECHANISM',
  username: 'KAFKA_SASL_USERNAME',
  passwordFile: 'KAFKA_SASL_PASSWORD_FILE',
  /** The password itself, when a file is not an option (the variable is named, never copied into config). */
  password: 'KAFKA_SASL_PASSWORD',
  tokenFile: 'KAFKA_SASL_TOKEN_FILE',
} as const;

/** Security from KAFKA_TLS_* / KAFKA_SASL_* variables, or undefined when none is set; checked like any config. */
export function kafkaSecurityFromEnv(env: NodeJS.ProcessEnv): KafkaSecurityConfig | undefined {
  const get = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const E = KAFKA_SECURITY_ENV;
  const tlsFiles = { caFile: get(E.caFile), certFile: get(E.certFile), keyFile: get(E.keyFile) };
  const hasTls = get(E.tls) === '1' || Object.values(tlsFiles).some((v) => v !== undefined);
  const mechanism = get(E.mechanism);
  const security: KafkaSecurityConfig = {};
  if (hasTls) security.tls = Object.fromEntries(Object.entries(tlsFiles).filter(([, v]) => v !== undefined));
  if (mechanism !== undefined) {
    const sasl: Record<string, string> = { mechanism: mechanism.toLowerCase() };
    const username = get(E.username);
    const passwordFile = get(E.passwordFile);
    const tokenFile = get(E.tokenFile);
    if (username !== undefined) sasl['username'] = username;
    if (passwordFile !== undefined) sasl['passwordFile'] = passwordFile;
    else if (get(E.password) !== undefined) sasl['passwordEnv'] = E.password;
    if (tokenFile !== undefined) sasl['tokenFile'] = tokenFile;
    security.sasl = sasl as KafkaSecurityConfig['sasl'];
  }
  return security.tls === undefined && security.sasl === undefined ? undefined : security;
}
