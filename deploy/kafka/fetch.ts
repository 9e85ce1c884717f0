// Fetch: the broker's jars come from a Maven repository through Maven (pom.xml beside this file) and are
// cached per version in `${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}}/smart-city/kafka/<version>/libs`.
// A marker written last vouches for a complete libs dir; a changed pom.xml fetches again.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { defineOptions, silentLog, Type, type Log } from '@city/protocol';
import { errorMessage, isEnoent, run, tail, type RunResult } from './child.ts';
import { kafkaErrors } from './errors.ts';

/** The broker version the project is tested against; pom.xml's default must match. */
export const KAFKA_VERSION = '4.4.0';

const POM_PATH = join(import.meta.dirname, 'pom.xml');
const MARKER_FILE = 'fetch-complete.json';
const FETCH_TIMEOUT_MS = 15 * 60_000;

/** x.y.z, optionally with a qualifier (4.4.0, 4.1.0-rc1). */
export const KafkaVersion = Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+([.-][0-9A-Za-z.-]+)?$', description: 'Kafka version x.y.z' });

export interface FetchKafkaOptions {
  version?: string;
  log?: Log;
}

const fetchOptions = defineOptions({
  schema: Type.Object({ version: KafkaVersion }, { additionalProperties: false }),
  defaults: { version: KAFKA_VERSION },
  error: (detail) => kafkaErrors.create('KAFKA_INVALID_OPTION', detail),
});

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
  const { log = silentLog, ...rest } = options;
  let version: string;
  try {
    ({ version } = fetchOptions.resolve(rest));
  } catch (err) {
    return Promise.reject(err);
  }
  let pending = fetches.get(version);
  if (pending === undefined) {
    pending = doFetch(version, log);
    fetches.set(version, pending);
    // A failed fetch may succeed later (network): do not memoise failures.
    pending.catch(() => fetches.delete(version));
  }
  return pending;
}

async function doFetch(version: string, log: Log): Promise<string> {
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
  log('info', 'fetching the Apache Kafka jars with Maven', { version, into: libsDir });
  const started = Date.now();
  const args = ['-B', '-q', '-f', POM_PATH, 'dependency:copy-dependencies', `-Dkafka.version=${version}`, `-DoutputDirectory=${stagingDir}`, '-DincludeScope=runtime'];
  let result: RunResult;
  try {
    result = await run('mvn', args, { timeoutMs: FETCH_TIMEOUT_MS });
  } catch (err) {
    await rm(stagingDir, { recursive: true, force: true });
    if (isEnoent(err)) throw kafkaErrors.create('KAFKA_MAVEN_MISSING', `cannot fetch Kafka ${version}`, err);
    throw kafkaErrors.create('KAFKA_FETCH_FAILED', `Kafka ${version}: running mvn failed: ${errorMessage(err)}`, err);
  }
  if (result.code !== 0) {
    await rm(stagingDir, { recursive: true, force: true });
    throw kafkaErrors.create(
      'KAFKA_FETCH_FAILED',
      `Kafka ${version}: mvn exited with ${result.code ?? result.signal}${result.timedOut ? ' (timed out)' : ''}; its output ends with:\n${tail(result.output)}`,
    );
  }
  const jars = (await readdir(stagingDir)).filter((name) => name.endsWith('.jar')).sort();
  if (!jars.some((name) => name === `kafka_2.13-${version}.jar`)) {
    await rm(stagingDir, { recursive: true, force: true });
    throw kafkaErrors.create('KAFKA_FETCH_INCOMPLETE', `Kafka ${version}: kafka_2.13-${version}.jar is not among the ${jars.length} jars`);
  }
  await rm(libsDir, { recursive: true, force: true });
  await rename(stagingDir, libsDir);
  const marker: FetchMarker = { version, pomSha256, jars, fetchedAt: new Date().toISOString() };
  const markerTmp = `${markerPath}.${process.pid}.tmp`;
  await writeFile(markerTmp, `${JSON.stringify(marker, null, 2)}\n`);
  await rename(markerTmp, markerPath);
  log('info', 'fetched the Kafka jars', { jars: jars.length, seconds: Number(((Date.now() - started) / 1000).toFixed(1)) });
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
