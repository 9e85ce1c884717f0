// The broker process: a fresh single-node KRaft broker (one JVM, broker and controller) on loopback
// ports, readiness, stop (SIGTERM, then SIGKILL after a deadline), and exit hooks so a broker never
// outlives the process that started it. `useKafka` takes an existing cluster from KAFKA_BROKERS instead.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import kafkajs from 'kafkajs';
import { defineOptions, silentLog, sleep, Type, type Log, type Static } from '@city/protocol';
import { errorMessage, fileTail, isEnoent, run, tail } from './child.ts';
import { generateTestCertificates, type TestCertificates } from './certs.ts';
import { clusterId, LOG4J2_PROPERTIES, serverProperties, type SecureListeners } from './config.ts';
import { kafkaErrors } from './errors.ts';
import { fetchKafka, KAFKA_VERSION, KafkaVersion } from './fetch.ts';

const FORMAT_TIMEOUT_MS = 60_000;

export interface KafkaCluster {
  /** Bootstrap addresses, `host:port`. */
  brokers: string[];
  /** Broker version when we started it; undefined for an external cluster (KAFKA_BROKERS). */
  version: string | undefined;
  /** True when the cluster came from KAFKA_BROKERS and is not ours to stop. */
  external: boolean;
  /** JVM process id; undefined for an external cluster. */
  pid: number | undefined;
  /** Directory holding server.properties, broker.log and the log dirs; undefined when external. */
  dataDir: string | undefined;
  /** The broker's stdout/stderr; undefined when external. */
  logFile: string | undefined;
  /** Settles when the broker process exits, for whatever reason; never settles when external. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, wait (then SIGKILL after a deadline), remove a temporary data dir. Same promise every call. */
  stop(): Promise<void>;
  /** With `secure`: the secured listeners, the certificates made for them and the users. */
  secure?: SecureCluster;
}

export interface SecureUser {
  name: string;
  password: string;
}

export interface SecureCluster {
  /** Bootstrap of the SASL_SSL listener (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER with unsigned tokens). */
  saslSsl: string[];
  /** Bootstrap of the SSL listener that requires a client certificate (mutual TLS). */
  mtls: string[];
  certificates: TestCertificates;
  /** Each with a PLAIN and a SCRAM-SHA-256 and -512 credential. */
  users: SecureUser[];
}

export interface StartKafkaOptions {
  version?: string;
  /** Kept after stop() when given (and reused: storage already formatted is left alone); default a fresh temp dir, removed on stop(). */
  dataDir?: string;
  /** JVM heap, MiB (default 512, at least 128). */
  heapMb?: number;
  /** How long the broker may take to serve (default 90 s). */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (default 20 s). */
  stopTimeoutMs?: number;
  /** Fixed client listener port (default: a free one). */
  port?: number;
  /** Port advertised to clients in metadata instead of the listener's, e.g. a fault proxy's in front of it. */
  advertisedPort?: number;
  /**
   * Also listen with SASL_SSL and with mutual-TLS SSL: certificates are generated into the data dir
   * (tls/) and these users get PLAIN and SCRAM credentials (SCRAM ones added when the storage is formatted).
   */
  secure?: { users: SecureUser[] };
  /** Progress: fetching, formatting, starting, ready. */
  log?: Log;
}

const Port = Type.Integer({ minimum: 1, maximum: 65_535 });

const StartSchema = Type.Object(
  {
    version: KafkaVersion,
    dataDir: Type.Optional(Type.String({ minLength: 1 })),
    heapMb: Type.Integer({ minimum: 128 }),
    readyTimeoutMs: Type.Number({ exclusiveMinimum: 0 }),
    stopTimeoutMs: Type.Number({ exclusiveMinimum: 0 }),
    port: Type.Optional(Port),
    advertisedPort: Type.Optional(Port),
    secure: Type.Optional(
      Type.Object(
        {
          users: Type.Array(
            Type.Object(
              // Names and passwords go into JAAS and --add-scram's [name=…,password=…]: no separators.
              { name: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }), password: Type.String({ pattern: '^[^,\\[\\]"\\\\=\\s]{8,128}$' }) },
              { additionalProperties: false },
            ),
            { minItems: 1 },
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const startOptions = defineOptions<typeof StartSchema, Omit<StartKafkaOptions, 'log'>>({
  schema: StartSchema,
  defaults: { version: KAFKA_VERSION, heapMb: 512, readyTimeoutMs: 90_000, stopTimeoutMs: 20_000 },
  error: (detail) => kafkaErrors.create('KAFKA_INVALID_OPTION', detail),
});

type StartSettings = Static<typeof StartSchema>;

/** Brokers started by this process, killed if the process exits before stopping them. */
const running = new Set<{ child: ChildProcess; ownedDir: string | undefined }>();
let exitHooksInstalled = false;

/** Starts a fresh single-node KRaft broker on free loopback ports (or `port`) and waits until it serves. */
export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaCluster> {
  const { log = silentLog, ...rest } = options;
  const settings = startOptions.resolve(rest);
  const java = javaCommand();
  const libsDir = await fetchKafka({ version: settings.version, log });
  const classpath = `${libsDir}/*`;

  const ownedDir = settings.dataDir === undefined ? await mkdtemp(join(tmpdir(), 'smart-city-kafka-')) : undefined;
  const dataDir = ownedDir ?? resolve(settings.dataDir as string);
  try {
    await mkdir(dataDir, { recursive: true });
    // Another process may take a port between our probe and the JVM's bind: try fresh ports then.
    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce({ java, classpath, dataDir, ownedDir, settings, log });
      } catch (err) {
        if (attempt < 3 && kafkaErrors.is(err, 'KAFKA_EXITED') && /Address already in use|BindException/.test(err.message)) {
          log('warn', 'a port was taken before the broker could bind it; retrying', { attempt: attempt + 1 });
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    if (ownedDir !== undefined) await rm(ownedDir, { recursive: true, force: true });
    throw err;
  }
}

interface StartContext {
  java: string;
  classpath: string;
  dataDir: string;
  ownedDir: string | undefined;
  settings: StartSettings;
  log: Log;
}

async function startOnce(ctx: StartContext): Promise<KafkaCluster> {
  const { java, classpath, dataDir, settings, log } = ctx;
  const [freePort, controllerPort, saslSslPort, mtlsPort] = await freePorts(settings.secure === undefined ? 2 : 4);
  const port = settings.port ?? (freePort as number);
  const host = '127.0.0.1';
  const propsPath = join(dataDir, 'server.properties');
  const log4jPath = join(dataDir, 'log4j2.properties');
  const logFile = join(dataDir, 'broker.log');
  const logDirs = join(dataDir, 'kraft-logs');
  let secure: SecureListeners | undefined;
  let certificates: TestCertificates | undefined;
  if (settings.secure !== undefined) {
    const tlsDir = join(dataDir, 'tls');
    certificates = existsSync(join(tlsDir, 'broker-keystore.pem')) ? certificatesIn(tlsDir) : await generateTestCertificates(tlsDir);
    secure = {
      saslSslPort: saslSslPort as number,
      mtlsPort: mtlsPort as number,
      keystoreFile: certificates.brokerKeystoreFile,
      truststoreFile: certificates.caFile,
      users: settings.secure.users,
    };
  }
  await writeFile(
    propsPath,
    serverProperties({ host, port, advertisedPort: settings.advertisedPort ?? port, controllerPort: controllerPort as number, logDirs, ...(secure === undefined ? {} : { secure }) }),
    { mode: 0o600 },
  );
  await writeFile(log4jPath, LOG4J2_PROPERTIES);

  const jvmCommon = [`-Dlog4j2.configurationFile=${log4jPath}`, `-Dkafka.logs.dir=${dataDir}`, '-Djava.awt.headless=true', '-cp', classpath];

  if (existsSync(join(logDirs, 'meta.properties'))) {
    log('info', 'reusing the formatted storage', { dir: logDirs });
  } else {
    await formatStorage(java, jvmCommon, propsPath, log, settings.secure?.users ?? []);
  }

  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      java,
      [`-Xmx${settings.heapMb}m`, `-Xms${Math.min(settings.heapMb, 128)}m`, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:+ExitOnOutOfMemoryError', ...jvmCommon, 'kafka.Kafka', propsPath],
      // Its own process group: a terminal's Ctrl-C must reach us first, so clients can finish
      // with the broker still up; our exit hooks and stop() end it.
      { cwd: dataDir, stdio: ['ignore', logFd, logFd], detached: true },
    );
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(logFd);
  }
  const startedAt = Date.now();
  const entry = { child, ownedDir: ctx.ownedDir };
  running.add(entry);
  installExitHooks();

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('exit', (code, signal) => {
      running.delete(entry);
      resolveExit({ code, signal });
    });
  });
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(isEnoent(err) ? javaMissing(java, err) : kafkaErrors.create('KAFKA_EXITED', `cannot run ${java}: ${err.message}`, err)));
  });
  spawnError.catch(() => undefined);

  const brokers = [`${host}:${port}`];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= stopChild(child, exited, settings.stopTimeoutMs).finally(async () => {
      running.delete(entry);
      if (ctx.ownedDir !== undefined) await rm(ctx.ownedDir, { recursive: true, force: true, maxRetries: 3 });
    });
    return stopping;
  };

  log('info', 'starting the broker', { version: settings.version, pid: child.pid, brokers: brokers[0], controller: `${host}:${controllerPort}`, log: logFile });
  const deadline = startedAt + settings.readyTimeoutMs;
  // Ends the readiness polling when the broker dies first.
  const polling = new AbortController();
  try {
    await Promise.race([
      waitUntilServing(brokers, deadline, polling.signal),
      spawnError,
      exited.then(async ({ code, signal }) => {
        throw kafkaErrors.create('KAFKA_EXITED', `during startup with ${code ?? signal}; ${logFile} ends with:\n${await fileTail(logFile)}`);
      }),
    ]);
  } catch (err) {
    polling.abort();
    await stopChild(child, exited, 5_000);
    running.delete(entry);
    if (kafkaErrors.is(err, 'KAFKA_EXITED') || kafkaErrors.is(err, 'KAFKA_JAVA_MISSING')) throw err;
    throw kafkaErrors.create(
      'KAFKA_START_TIMEOUT',
      `the broker on ${brokers[0]} was not serving after ${settings.readyTimeoutMs} ms (${errorMessage(err)}); ${logFile} ends with:\n${await fileTail(logFile)}`,
      err,
    );
  }
  log('info', 'the broker is ready', { version: settings.version, brokers: brokers[0], ms: Date.now() - startedAt });

  const cluster: KafkaCluster = { brokers, version: settings.version, external: false, pid: child.pid, dataDir, logFile, exited, stop };
  if (secure !== undefined && certificates !== undefined && settings.secure !== undefined) {
    cluster.secure = { saslSsl: [`${host}:${secure.saslSslPort}`], mtls: [`${host}:${secure.mtlsPort}`], certificates, users: [...settings.secure.users] };
  }
  return cluster;
}

/**
 * One-time storage format of a new log dir with a new cluster id. Static quorum
 * (controller.quorum.voters) so neither --standalone nor a directory id is needed, and the ports
 * may differ on the next start of a kept data dir.
 */
async function formatStorage(java: string, jvmCommon: string[], propsPath: string, log: Log, users: readonly SecureUser[]): Promise<void> {
  const started = Date.now();
  // SCRAM credentials go into the cluster metadata at format time (KRaft has no ZooKeeper to hold them).
  const scram = users.flatMap((u) => ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${u.name},password=${u.password}]`]));
  const args = ['-Xmx256m', ...jvmCommon, 'kafka.tools.StorageTool', 'format', '--cluster-id', clusterId(), '--config', propsPath, ...scram];
  const result = await run(java, args, { timeoutMs: FORMAT_TIMEOUT_MS }).catch((err: unknown) => {
    throw isEnoent(err) ? javaMissing(java, err) : kafkaErrors.create('KAFKA_FORMAT_FAILED', errorMessage(err), err);
  });
  if (result.code !== 0) {
    const detail = `kafka.tools.StorageTool format exited with ${result.code ?? result.signal}:\n${tail(result.output)}`;
    throw kafkaErrors.create(result.timedOut ? 'KAFKA_FORMAT_TIMEOUT' : 'KAFKA_FORMAT_FAILED', detail);
  }
  log('info', 'formatted the broker storage', { dir: propsPath.replace(/\/server\.properties$/, ''), ms: Date.now() - started });
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>, timeoutMs: number): Promise<void> {
  // No pid: spawning failed and there is no process (nor an 'exit' event) to wait for.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout(true), timeoutMs);
  });
  const timedOut = await Promise.race([exited.then(() => false), deadline]);
  clearTimeout(timer);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Polls with a kafkajs admin until the broker answers metadata and lists itself (i.e. is unfenced). */
async function waitUntilServing(brokers: string[], deadline: number, signal: AbortSignal): Promise<void> {
  let lastError: unknown = new Error('no attempt made');
  while (Date.now() < deadline && !signal.aborted) {
    const admin = new kafkajs.Kafka({
      clientId: 'smart-city-kafka-launcher',
      brokers,
      logLevel: kafkajs.logLevel.NOTHING,
      connectionTimeout: 1_000,
      requestTimeout: 2_000,
      retry: { retries: 0 },
    }).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length > 0) return;
      lastError = new Error('metadata lists no broker yet');
    } catch (err) {
      lastError = err;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await sleep(250, { signal });
  }
  throw lastError;
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killRunningSync);
  // Node's default for these signals exits without emitting 'exit'. When nobody else handles the
  // signal, kill the brokers, then restore the default and re-raise it so the process still dies.
  // When someone else does (vitest, the CLIs), they own shutdown, and 'exit' covers process.exit().
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      killRunningSync();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Synchronous only: on 'exit' the event loop is gone. A temp dir's broker is killed outright so
 * its dir can go at once; a kept data dir's broker gets SIGTERM so the JVM can close its logs.
 */
function killRunningSync(): void {
  for (const { child, ownedDir } of running) {
    child.kill(ownedDir === undefined ? 'SIGTERM' : 'SIGKILL');
    if (ownedDir !== undefined) rmSync(ownedDir, { recursive: true, force: true });
  }
  running.clear();
}

function certificatesIn(dir: string): TestCertificates {
  const at = (name: string) => join(dir, name);
  return {
    dir,
    caFile: at('city-test-ca.pem'),
    otherCaFile: at('unrelated-ca.pem'),
    brokerKeystoreFile: at('broker-keystore.pem'),
    clientCertFile: at('client.pem'),
    clientKeyFile: at('client.key'),
  };
}

function javaCommand(): string {
  const home = process.env['JAVA_HOME'];
  if (home !== undefined && home !== '') {
    const candidate = join(home, 'bin', 'java');
    if (existsSync(candidate)) return candidate;
  }
  return 'java';
}

function javaMissing(java: string, cause: unknown) {
  return kafkaErrors.create('KAFKA_JAVA_MISSING', `cannot start Kafka: "${java}" not found`, cause);
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return server;
    }),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected server address');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolveClose) => server.close(resolveClose))));
  return ports;
}

// ---------------------------------------------------------------------------------------------
// An external cluster, or our own

/** KAFKA_BROKERS (comma-separated host:port) means "use that cluster"; otherwise start our own. */
export async function useKafka(options: StartKafkaOptions = {}): Promise<KafkaCluster> {
  const fromEnv = process.env['KAFKA_BROKERS'];
  if (fromEnv === undefined || fromEnv.trim() === '') return startKafka(options);
  const brokers = parseBrokers(fromEnv, 'KAFKA_BROKERS');
  options.log?.('info', 'using an external Kafka (KAFKA_BROKERS)', { brokers: brokers.join(',') });
  const stopped = Promise.resolve();
  return {
    brokers,
    version: undefined,
    external: true,
    pid: undefined,
    dataDir: undefined,
    logFile: undefined,
    exited: new Promise(() => undefined),
    stop: () => stopped,
  };
}

/** `host:port,host:port…` as a list; `source` names where it came from in errors (a flag, a variable). */
export function parseBrokers(value: string, source = 'KAFKA_BROKERS'): string[] {
  const brokers = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (brokers.length === 0) throw kafkaErrors.create('KAFKA_INVALID_OPTION', `${source} lists no broker`);
  for (const broker of brokers) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(broker);
    const port = match === null ? NaN : Number(match[2]);
    if (!(port >= 1 && port <= 65_535)) {
      throw kafkaErrors.create('KAFKA_INVALID_OPTION', `${source} entry "${broker}" is not host:port with a port in 1..65535`);
    }
  }
  return brokers;
}
