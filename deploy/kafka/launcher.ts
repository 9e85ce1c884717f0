/**
 * Runs a real single-node Apache Kafka broker (KRaft: one JVM that is both broker and controller,
 * no ZooKeeper) for tests, for the local "run the city" script and for CI.
 *
 * The broker's jars come from the package registry through Maven (see pom.xml beside this file)
 * and are cached per version in `${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}}/smart-city/kafka/<version>/libs`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import kafkajs from 'kafkajs';

/** The broker version the project is tested against; pom.xml's default must match. */
export const KAFKA_VERSION = '4.4.0';

const POM_PATH = join(import.meta.dirname, 'pom.xml');
const MARKER_FILE = 'fetch-complete.json';
const DEFAULT_HEAP_MB = 512;
const DEFAULT_READY_TIMEOUT_MS = 90_000;
const DEFAULT_STOP_TIMEOUT_MS = 20_000;
const FORMAT_TIMEOUT_MS = 60_000;
const FETCH_TIMEOUT_MS = 15 * 60_000;
const LOG_TAIL_CHARS = 4_000;

// ---------------------------------------------------------------------------------------------
// Errors

export const KafkaLauncherErrorCodes = {
  FETCH_FAILED: 'KAFKA_FETCH_FAILED',
  JAVA_MISSING: 'KAFKA_JAVA_MISSING',
  FORMAT_FAILED: 'KAFKA_FORMAT_FAILED',
  START_TIMEOUT: 'KAFKA_START_TIMEOUT',
  EXITED: 'KAFKA_EXITED',
  INVALID_OPTION: 'KAFKA_INVALID_OPTION',
  TOPIC_MISMATCH: 'KAFKA_TOPIC_MISMATCH',
  TOPICS_TIMEOUT: 'KAFKA_TOPICS_TIMEOUT',
} as const;

export type KafkaLauncherErrorCode = (typeof KafkaLauncherErrorCodes)[keyof typeof KafkaLauncherErrorCodes];

export class KafkaLauncherError extends Error {
  readonly code: KafkaLauncherErrorCode;
  /** Whether running the same call again could succeed (a timeout, a port race, a network blip). */
  readonly canRetry: boolean;

  constructor(code: KafkaLauncherErrorCode, message: string, options: { canRetry: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KafkaLauncherError';
    this.code = code;
    this.canRetry = options.canRetry;
  }
}

// ---------------------------------------------------------------------------------------------
// Public types

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
}

export interface FetchKafkaOptions {
  version?: string;
  log?: (line: string) => void;
}

export interface StartKafkaOptions extends FetchKafkaOptions {
  /** Kept after stop() when given (and reused: storage already formatted is left alone); default a fresh temp dir, removed on stop(). */
  dataDir?: string;
  heapMb?: number;
  readyTimeoutMs?: number;
  stopTimeoutMs?: number;
  /** Fixed client listener port (default: a free one). */
  port?: number;
  /** Port advertised to clients in metadata instead of the listener's, e.g. a fault proxy's in front of it. */
  advertisedPort?: number;
}

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  replicationFactor?: number;
  configs?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Fetch

/** Root of the per-version caches; KAFKA_CACHE_DIR replaces the XDG cache base. */
export function kafkaCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['KAFKA_CACHE_DIR'] || env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(resolve(base), 'smart-city', 'kafka');
}

interface FetchMarker {
  version: string;
  pomSha256: string;
  jars: string[];
  fetchedAt: string;
}

const fetches = new Map<string, Promise<string>>();

/** Resolves the broker's jars into the cache (once per version and pom) and returns the libs dir. */
export function fetchKafka(options: FetchKafkaOptions = {}): Promise<string> {
  const version = options.version ?? KAFKA_VERSION;
  validateVersion(version);
  let pending = fetches.get(version);
  if (pending === undefined) {
    pending = doFetch(version, options.log ?? noop);
    fetches.set(version, pending);
    // A failed fetch may succeed later (network): do not memoise failures.
    pending.catch(() => fetches.delete(version));
  }
  return pending;
}

async function doFetch(version: string, log: (line: string) => void): Promise<string> {
  const versionDir = join(kafkaCacheRoot(), version);
  const libsDir = join(versionDir, 'libs');
  const markerPath = join(versionDir, MARKER_FILE);
  const pom = await readFile(POM_PATH);
  const pomSha256 = createHash('sha256').update(pom).digest('hex');

  if (await markerIsValid(markerPath, libsDir, version, pomSha256)) return libsDir;

  await mkdir(versionDir, { recursive: true });
  // Maven writes into a private dir that is renamed into place, so a concurrent or interrupted
  // fetch never leaves a half-filled libs dir that a marker vouches for.
  const stagingDir = join(versionDir, `libs.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  log(`fetching Apache Kafka ${version} jars with Maven into ${libsDir}`);
  const started = Date.now();
  const args = [
    '-B',
    '-q',
    '-f',
    POM_PATH,
    'dependency:copy-dependencies',
    `-Dkafka.version=${version}`,
    `-DoutputDirectory=${stagingDir}`,
    '-DincludeScope=runtime',
  ];
  let result: RunResult;
  try {
    result = await run('mvn', args, { timeoutMs: FETCH_TIMEOUT_MS });
  } catch (err) {
    await rm(stagingDir, { recursive: true, force: true });
    throw new KafkaLauncherError(
      KafkaLauncherErrorCodes.FETCH_FAILED,
      isEnoent(err)
        ? 'cannot fetch Kafka: `mvn` (Apache Maven) is not on PATH; install Maven 3.8 or newer'
        : `cannot fetch Kafka ${version}: running mvn failed: ${errorMessage(err)}`,
      { canRetry: !isEnoent(err), cause: err },
    );
  }
  if (result.code !== 0) {
    await rm(stagingDir, { recursive: true, force: true });
    throw new KafkaLauncherError(
      KafkaLauncherErrorCodes.FETCH_FAILED,
      `cannot fetch Kafka ${version}: mvn exited with ${result.code ?? result.signal}` +
        `${result.timedOut ? ' (timed out)' : ''}; its output ends with:\n${tail(result.output)}`,
      { canRetry: true },
    );
  }
  const jars = (await readdir(stagingDir)).filter((name) => name.endsWith('.jar')).sort();
  if (!jars.some((name) => name === `kafka_2.13-${version}.jar`)) {
    await rm(stagingDir, { recursive: true, force: true });
    throw new KafkaLauncherError(
      KafkaLauncherErrorCodes.FETCH_FAILED,
      `cannot fetch Kafka ${version}: mvn succeeded but kafka_2.13-${version}.jar is not among the ${jars.length} jars`,
      { canRetry: false },
    );
  }
  await rm(libsDir, { recursive: true, force: true });
  await rename(stagingDir, libsDir);
  const marker: FetchMarker = { version, pomSha256, jars, fetchedAt: new Date().toISOString() };
  const markerTmp = `${markerPath}.${process.pid}.tmp`;
  await writeFile(markerTmp, `${JSON.stringify(marker, null, 2)}\n`);
  await rename(markerTmp, markerPath);
  log(`fetched ${jars.length} jars in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return libsDir;
}

async function markerIsValid(markerPath: string, libsDir: string, version: string, pomSha256: string): Promise<boolean> {
  let marker: Partial<FetchMarker>;
  try {
    marker = JSON.parse(await readFile(markerPath, 'utf8')) as Partial<FetchMarker>;
  } catch {
    return false;
  }
  if (marker.version !== version || marker.pomSha256 !== pomSha256 || !Array.isArray(marker.jars)) return false;
  try {
    const present = new Set(await readdir(libsDir));
    return marker.jars.length > 0 && marker.jars.every((jar) => present.has(jar));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Start / stop

/** Brokers started by this process, killed if the process exits before stopping them. */
const running = new Set<{ child: ChildProcess; ownedDir: string | undefined }>();
let exitHooksInstalled = false;

/** Starts a fresh single-node KRaft broker on two free loopback ports and waits until it serves. */
export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaCluster> {
  const version = options.version ?? KAFKA_VERSION;
  const log = options.log ?? noop;
  const heapMb = options.heapMb ?? DEFAULT_HEAP_MB;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  if (!Number.isInteger(heapMb) || heapMb < 128) {
    throw invalidOption(`heapMb must be an integer ≥ 128, got ${String(heapMb)}`);
  }
  if (!(readyTimeoutMs > 0)) throw invalidOption(`readyTimeoutMs must be > 0, got ${String(readyTimeoutMs)}`);
  if (!(stopTimeoutMs > 0)) throw invalidOption(`stopTimeoutMs must be > 0, got ${String(stopTimeoutMs)}`);
  for (const [name, value] of [['port', options.port], ['advertisedPort', options.advertisedPort]] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= 65_535)) {
      throw invalidOption(`${name} must be an integer in 1..65535, got ${String(value)}`);
    }
  }

  const java = javaCommand();
  const libsDir = await fetchKafka({ version, log });
  const classpath = `${libsDir}/*`;

  const ownedDir = options.dataDir === undefined ? await mkdtemp(join(tmpdir(), 'smart-city-kafka-')) : undefined;
  const dataDir = ownedDir ?? resolve(options.dataDir as string);
  try {
    await mkdir(dataDir, { recursive: true });
    // Another process may take a port between our probe and the JVM's bind: try fresh ports then.
    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce({ java, classpath, dataDir, ownedDir, version, heapMb, readyTimeoutMs, stopTimeoutMs, log, port: options.port, advertisedPort: options.advertisedPort });
      } catch (err) {
        if (attempt < 3 && err instanceof KafkaLauncherError && err.code === KafkaLauncherErrorCodes.EXITED && /Address already in use|BindException/.test(err.message)) {
          log(`port taken before the broker could bind it, retrying (attempt ${attempt + 1})`);
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
  version: string;
  heapMb: number;
  readyTimeoutMs: number;
  stopTimeoutMs: number;
  log: (line: string) => void;
  port: number | undefined;
  advertisedPort: number | undefined;
}

async function startOnce(ctx: StartContext): Promise<KafkaCluster> {
  const { java, classpath, dataDir, version, log } = ctx;
  const [freePort, controllerPort] = await freePorts(2);
  const port = ctx.port ?? freePort;
  const host = '127.0.0.1';
  const propsPath = join(dataDir, 'server.properties');
  const log4jPath = join(dataDir, 'log4j2.properties');
  const logFile = join(dataDir, 'broker.log');
  const logDirs = join(dataDir, 'kraft-logs');
  await writeFile(propsPath, serverProperties({ host, port, advertisedPort: ctx.advertisedPort ?? port, controllerPort, logDirs }));
  await writeFile(log4jPath, LOG4J2_PROPERTIES);

  const jvmCommon = [
    `-Dlog4j2.configurationFile=${log4jPath}`,
    `-Dkafka.logs.dir=${dataDir}`,
    '-Djava.awt.headless=true',
    '-cp',
    classpath,
  ];

  if (existsSync(join(logDirs, 'meta.properties'))) {
    log(`reusing the formatted storage in ${logDirs}`);
  } else {
    await formatStorage(java, jvmCommon, propsPath, log);
  }

  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      java,
      [
        `-Xmx${ctx.heapMb}m`,
        `-Xms${Math.min(ctx.heapMb, 128)}m`,
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-XX:+ExitOnOutOfMemoryError',
        ...jvmCommon,
        'kafka.Kafka',
        propsPath,
      ],
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
    child.once('error', (err) =>
      reject(
        isEnoent(err)
          ? javaMissing(java, err)
          : new KafkaLauncherError(KafkaLauncherErrorCodes.EXITED, `cannot run ${java}: ${err.message}`, { canRetry: false, cause: err }),
      ),
    );
  });
  spawnError.catch(noop);

  const brokers = [`${host}:${port}`];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= stopChild(child, exited, ctx.stopTimeoutMs).finally(async () => {
      running.delete(entry);
      if (ctx.ownedDir !== undefined) await rm(ctx.ownedDir, { recursive: true, force: true, maxRetries: 3 });
    });
    return stopping;
  };

  log(`starting Kafka ${version} (pid ${child.pid ?? '?'}) on ${brokers[0]}, controller on ${host}:${controllerPort}, log ${logFile}`);
  const deadline = startedAt + ctx.readyTimeoutMs;
  // Ends the readiness polling when the broker dies first.
  const polling = new AbortController();
  try {
    await Promise.race([
      waitUntilServing(brokers, deadline, polling.signal),
      spawnError,
      exited.then(async ({ code, signal }) => {
        throw new KafkaLauncherError(
          KafkaLauncherErrorCodes.EXITED,
          `Kafka broker exited during startup with ${code ?? signal}; ${logFile} ends with:\n${await fileTail(logFile)}`,
          { canRetry: false },
        );
      }),
    ]);
  } catch (err) {
    polling.abort();
    await stopChild(child, exited, 5_000);
    running.delete(entry);
    if (err instanceof KafkaLauncherError) throw err;
    throw new KafkaLauncherError(
      KafkaLauncherErrorCodes.START_TIMEOUT,
      `Kafka broker on ${brokers[0]} was not serving after ${ctx.readyTimeoutMs} ms (${errorMessage(err)}); ${logFile} ends with:\n${await fileTail(logFile)}`,
      { canRetry: true, cause: err },
    );
  }
  log(`Kafka ${version} ready on ${brokers[0]} after ${Date.now() - startedAt} ms`);

  return { brokers, version, external: false, pid: child.pid, dataDir, logFile, exited, stop };
}

/**
 * One-time storage format of a new log dir with a new cluster id. Static quorum
 * (controller.quorum.voters) so neither --standalone nor a directory id is needed, and the ports
 * may differ on the next start of a kept data dir.
 */
async function formatStorage(java: string, jvmCommon: string[], propsPath: string, log: (line: string) => void): Promise<void> {
  const started = Date.now();
  const args = ['-Xmx256m', ...jvmCommon, 'kafka.tools.StorageTool', 'format', '--cluster-id', clusterId(), '--config', propsPath];
  const result = await run(java, args, { timeoutMs: FORMAT_TIMEOUT_MS }).catch((err: unknown) => {
    throw isEnoent(err)
      ? javaMissing(java, err)
      : new KafkaLauncherError(KafkaLauncherErrorCodes.FORMAT_FAILED, `formatting Kafka storage failed: ${errorMessage(err)}`, {
          canRetry: false,
          cause: err,
        });
  });
  if (result.code !== 0) {
    throw new KafkaLauncherError(
      KafkaLauncherErrorCodes.FORMAT_FAILED,
      `kafka.tools.StorageTool format exited with ${result.code ?? result.signal}${result.timedOut ? ' (timed out)' : ''}:\n${tail(result.output)}`,
      { canRetry: result.timedOut },
    );
  }
  log(`formatted ${propsPath.replace(/\/server\.properties$/, '')} in ${Date.now() - started} ms`);
}

async function stopChild(
  child: ChildProcess,
  exited: Promise<unknown>,
  timeoutMs: number,
): Promise<void> {
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
      await admin.disconnect().catch(noop);
    }
    await sleep(250);
  }
  throw lastError;
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killRunningSync);
  // Node's default for these signals exits without emitting 'exit'. When nobody else handles the
  // signal, kill the brokers, then restore the default and re-raise it so the process still dies.
  // When someone else does (vitest, cli.ts), they own shutdown, and 'exit' covers process.exit().
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

// ---------------------------------------------------------------------------------------------
// External cluster or our own

/** KAFKA_BROKERS (comma-separated host:port) means "use that cluster"; otherwise start our own. */
export async function useKafka(options: StartKafkaOptions = {}): Promise<KafkaCluster> {
  const fromEnv = process.env['KAFKA_BROKERS'];
  if (fromEnv === undefined || fromEnv.trim() === '') return startKafka(options);
  const brokers = parseBrokers(fromEnv);
  options.log?.(`using external Kafka at ${brokers.join(',')} (KAFKA_BROKERS)`);
  const stopped = Promise.resolve();
  return {
    brokers,
    version: undefined,
    external: true,
    pid: undefined,
    dataDir: undefined,
    logFile: undefined,
    exited: new Promise(noop),
    stop: () => stopped,
  };
}

export function parseBrokers(value: string): string[] {
  const brokers = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (brokers.length === 0) throw invalidOption('KAFKA_BROKERS lists no broker');
  for (const broker of brokers) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(broker);
    const port = match === null ? NaN : Number(match[2]);
    if (!(port >= 1 && port <= 65_535)) {
      throw invalidOption(`KAFKA_BROKERS entry "${broker}" is not host:port with a port in 1..65535`);
    }
  }
  return brokers;
}

// ---------------------------------------------------------------------------------------------
// Topics

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/**
 * Creates the topics that do not exist yet, with explicit partition counts, and waits until the
 * metadata shows every topic with a leader for each partition. Existing topics are left alone,
 * except that one with fewer partitions than asked for is an error: keyed ordering depends on
 * the count, so this is not silently "fixed".
 */
export async function ensureTopics(
  brokers: string[],
  topics: TopicSpec[],
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const names = new Set<string>();
  for (const spec of topics) {
    if (!TOPIC_NAME.test(spec.topic) || spec.topic === '.' || spec.topic === '..') {
      throw invalidOption(`topic "${spec.topic}": name must be 1..249 of [a-zA-Z0-9._-] and not "." or ".."`);
    }
    if (names.has(spec.topic)) throw invalidOption(`topic "${spec.topic}" is listed twice`);
    names.add(spec.topic);
    if (!Number.isInteger(spec.numPartitions) || spec.numPartitions < 1) {
      throw invalidOption(`topic "${spec.topic}": numPartitions must be an integer ≥ 1, got ${String(spec.numPartitions)}`);
    }
    if (spec.replicationFactor !== undefined && (!Number.isInteger(spec.replicationFactor) || spec.replicationFactor < 1)) {
      throw invalidOption(`topic "${spec.topic}": replicationFactor must be an integer ≥ 1, got ${String(spec.replicationFactor)}`);
    }
  }
  if (topics.length === 0) return;

  const admin = new kafkajs.Kafka({
    clientId: 'smart-city-ensure-topics',
    brokers,
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((spec) => !existing.has(spec.topic));
    if (missing.length > 0) {
      // A concurrent creator makes kafkajs report TOPIC_ALREADY_EXISTS, which it maps to `false`.
      await admin.createTopics({
        waitForLeaders: false,
        timeout: timeoutMs,
        topics: missing.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.numPartitions,
          replicationFactor: spec.replicationFactor ?? 1,
          configEntries: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    }

    const deadline = Date.now() + timeoutMs;
    const wanted = new Map(topics.map((spec) => [spec.topic, spec.numPartitions]));
    let pending = 'no metadata yet';
    while (Date.now() < deadline) {
      try {
        const { topics: metadata } = await admin.fetchTopicMetadata({ topics: [...wanted.keys()] });
        const notReady: string[] = [];
        for (const topic of metadata) {
          const want = wanted.get(topic.name) ?? 0;
          const count = topic.partitions.length;
          if (count > 0 && count < want) {
            throw new KafkaLauncherError(
              KafkaLauncherErrorCodes.TOPIC_MISMATCH,
              `topic "${topic.name}" exists with ${count} partitions but ${want} were asked for; ` +
                'raise it on purpose (kafka-topics --alter) or use another topic name',
              { canRetry: false },
            );
          }
          if (count === 0 || topic.partitions.some((p) => p.leader < 0)) notReady.push(topic.name);
        }
        if (metadata.length === wanted.size && notReady.length === 0) return;
        pending = `waiting for leaders of ${notReady.join(', ') || 'all topics'}`;
      } catch (err) {
        if (err instanceof KafkaLauncherError) throw err;
        pending = errorMessage(err);
      }
      await sleep(100);
    }
    throw new KafkaLauncherError(
      KafkaLauncherErrorCodes.TOPICS_TIMEOUT,
      `topics ${[...wanted.keys()].join(', ')} not ready after ${timeoutMs} ms: ${pending}`,
      { canRetry: true },
    );
  } finally {
    await admin.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Broker configuration

function serverProperties(p: { host: string; port: number; advertisedPort: number; controllerPort: number; logDirs: string }): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    // Static quorum: formatting then needs neither --standalone nor a directory id.
    'controller.quorum.voters': `1@${p.host}:${p.controllerPort}`,
    listeners: `PLAINTEXT://${p.host}:${p.port},CONTROLLER://${p.host}:${p.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${p.host}:${p.advertisedPort}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'log.dirs': p.logDirs,
    // Topics are created on purpose, with explicit partition counts (ensureTopics).
    'auto.create.topics.enable': false,
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    // One node: internal topics with one replica, few partitions so the first group or producer id is quick.
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Small machine: the cleaner's default 128 MiB dedupe buffer would be a quarter of the heap.
    'log.cleaner.dedupe.buffer.size': 8 * 1024 * 1024,
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    // Fast, clean shutdown: the broker is its own controller, nothing to wait for.
    'controlled.shutdown.enable': true,
    'controller.quorum.election.timeout.ms': 1_000,
    'controller.quorum.fetch.timeout.ms': 2_000,
  };
  return `${Object.entries(props)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join('\n')}\n`;
}

const LOG4J2_PROPERTIES = `# Written by deploy/kafka/launcher.ts: everything to stdout, which the launcher sends to broker.log.
status = warn
# Kafka logs from its own shutdown hook; log4j's hook would stop logging under it.
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
# Per-request and state-change chatter that buries the useful lines.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
# Every client and server config object dumps all its settings at INFO; server.properties is beside this file.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
`;

// ---------------------------------------------------------------------------------------------
// Helpers

/** Kafka's cluster id: 16 random bytes, base64url; Kafka avoids a leading '-' (CLI flag confusion). */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function javaCommand(): string {
  const home = process.env['JAVA_HOME'];
  if (home !== undefined && home !== '') {
    const candidate = join(home, 'bin', 'java');
    if (existsSync(candidate)) return candidate;
  }
  return 'java';
}

function javaMissing(java: string, cause: unknown): KafkaLauncherError {
  return new KafkaLauncherError(
    KafkaLauncherErrorCodes.JAVA_MISSING,
    `cannot start Kafka: "${java}" not found; install a Java 17+ runtime or set JAVA_HOME`,
    { canRetry: false, cause },
  );
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

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
}

/** Runs a command to completion, collecting stdout and stderr together (bounded). */
function run(command: string, args: string[], options: { timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-64_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      rejectRun(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, output, timedOut });
    });
  });
}

async function fileTail(path: string): Promise<string> {
  try {
    const { size } = await stat(path);
    const handle = await open(path, 'r');
    try {
      const length = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return tail(buffer.toString('utf8'));
    } finally {
      await handle.close();
    }
  } catch (err) {
    return `  (cannot read it: ${errorMessage(err)})`;
  }
}

/** The last lines of a JVM's output, minus config dumps ("\tkey = value") that crowd out the error. */
function tail(text: string, chars = LOG_TAIL_CHARS): string {
  const cleaned = text.replace(/^\s*\t[\w.-]+ = .*\n/gm, '').trimEnd();
  const cut = cleaned.length > chars ? cleaned.slice(cleaned.indexOf('\n', cleaned.length - chars) + 1) : cleaned;
  return cut
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

function validateVersion(version: string): void {
  if (!/^\d+\.\d+\.\d+([.-][0-9A-Za-z.-]+)?$/.test(version)) throw invalidOption(`Kafka version "${version}" is not x.y.z`);
}

function invalidOption(message: string): KafkaLauncherError {
  return new KafkaLauncherError(KafkaLauncherErrorCodes.INVALID_OPTION, message, { canRetry: false });
}

function isEnoent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

function noop(): void {}
