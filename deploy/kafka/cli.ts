// Process entry of `npm run kafka -- fetch|start|topics`. `start` prints the bootstrap address (host:port)
// alone on stdout once the broker serves and the standard topics exist, so a script can read it;
// progress goes to stderr. SIGINT/SIGTERM stop the broker cleanly; a second signal gives up waiting.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { closeOnSignals, createLifecycle, isHelpWord, lifecycleErrorsFrom, parseCommandLine, runMain, textLog, type Log } from '@city/protocol';
import { parseBrokers, startKafka, type KafkaCluster } from './broker.ts';
import { kafkaErrors } from './errors.ts';
import { KAFKA_VERSION, fetchKafka } from './fetch.ts';
import { ensureStandardTopics, standardTopics, type EnsureTopicsResult } from './topics.ts';

const FETCH_USAGE = `usage: npm run kafka -- fetch [--version V]
  fetch the broker's jars into the cache (once per version; CI does this first)
  --version V         Kafka version (default ${KAFKA_VERSION})`;

const START_USAGE = `usage: npm run kafka -- start [--data-dir D] [--port P] [--heap-mb N] [--version V] [--topic-suffix S] [--no-topics] [--secure]
  run a single-node KRaft broker in the foreground, create the standard topics, print host:port
  --data-dir D        keep the broker's data in D and reuse it next time (default: a temp dir removed on exit)
  --port P            client port (default: a free one)
  --heap-mb N         JVM heap in MiB (default 512)
  --version V         Kafka version (default ${KAFKA_VERSION})
  --topic-suffix S    create the standard topics named <standard>.<S> instead
  --no-topics         create no topics
  --secure            also listen with SASL_SSL (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER with unsigned tokens) and with
                      mutual-TLS SSL: certificates are made in <data dir>/tls, user "city" gets a random password
                      in <data dir>/tls/city.password; the addresses and files are logged (for tests and local runs)`;

const TOPICS_USAGE = `usage: npm run kafka -- topics --brokers HOST:PORT[,HOST:PORT…] [--topic-suffix S]
  create the standard topics that are missing, with their partition counts (existing ones are kept)
  --brokers LIST      bootstrap servers (default: $KAFKA_BROKERS)
  --topic-suffix S    the standard topics named <standard>.<S> (a test run, a staging namespace)`;

const USAGE = `usage: npm run kafka -- <command> [options]   (--help after a command for its options)
  fetch     fetch the broker's jars into the cache
  start     run a single-node KRaft broker with the standard topics (prints host:port)
  topics    create the standard topics on a running cluster

${FETCH_USAGE}

${START_USAGE}

${TOPICS_USAGE}`;

const STOP_DEADLINE_MS = 30_000;

/** A kept data dir keeps its password (its SCRAM credential was written at format time); otherwise a new one. */
async function securePassword(dataDir: string | undefined): Promise<string> {
  if (dataDir !== undefined) {
    const kept = await readFile(join(dataDir, 'tls', 'city.password'), 'utf8').catch(() => undefined);
    if (kept !== undefined && kept.trim() !== '') return kept.trim();
  }
  return randomBytes(18).toString('base64url');
}

const usageError = (detail: string) => kafkaErrors.create('KAFKA_USAGE', detail);

function integerFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usageError(`--${flag} must be a whole number, got "${value}"`);
  return Number(value);
}

/** One line per topic on stdout: name, partitions, whether this run created it. */
function printTopics(result: EnsureTopicsResult, partitions: Map<string, number>): void {
  const names = [...result.created, ...result.existing].sort();
  const width = Math.max(...names.map((n) => n.length));
  for (const name of names) {
    process.stdout.write(`${name.padEnd(width)}  ${String(partitions.get(name) ?? '?').padStart(2)} partitions  ${result.created.includes(name) ? 'created' : 'exists'}\n`);
  }
}

async function fetchCommand(argv: readonly string[], log: Log): Promise<number> {
  const args = parseCommandLine(argv, { version: { type: 'string', default: KAFKA_VERSION } }, { usage: FETCH_USAGE, usageError });
  if (!args) return 0;
  const libs = await fetchKafka({ version: args.values.version, log });
  log('info', 'the Kafka jars are in the cache', { version: args.values.version, libs });
  return 0;
}

async function topicsCommand(argv: readonly string[], log: Log): Promise<number> {
  const args = parseCommandLine(argv, { brokers: { type: 'string' }, 'topic-suffix': { type: 'string' } }, { usage: TOPICS_USAGE, usageError });
  if (!args) return 0;
  const list = args.values.brokers ?? process.env['KAFKA_BROKERS'];
  if (list === undefined || list.trim() === '') throw usageError('--brokers is required (or set KAFKA_BROKERS)');
  const brokers = parseBrokers(list, '--brokers');
  const suffix = args.values['topic-suffix'];
  const result = await ensureStandardTopics(brokers, suffix === undefined ? {} : { suffix });
  log('info', 'the standard topics exist', { brokers: brokers.join(','), created: result.created.length, existing: result.existing.length });
  printTopics(result, new Map(standardTopics(suffix).map((s) => [s.topic, s.numPartitions])));
  return 0;
}

async function startCommand(argv: readonly string[], log: Log): Promise<number> {
  const args = parseCommandLine(
    argv,
    {
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      'heap-mb': { type: 'string' },
      version: { type: 'string', default: KAFKA_VERSION },
      'topic-suffix': { type: 'string' },
      'no-topics': { type: 'boolean' },
      secure: { type: 'boolean' },
    },
    { usage: START_USAGE, usageError },
  );
  if (!args) return 0;
  const { values } = args;
  if (values['no-topics'] === true && values['topic-suffix'] !== undefined) throw usageError('give --topic-suffix or --no-topics, not both');
  const heapMb = integerFlag('heap-mb', values['heap-mb']);
  const port = integerFlag('port', values.port);

  const life = createLifecycle({
    name: 'kafka',
    deadlineMs: STOP_DEADLINE_MS,
    errors: lifecycleErrorsFrom(kafkaErrors, { alreadyStarted: 'KAFKA_ALREADY_STARTED', closed: 'KAFKA_STOPPED', timeout: 'KAFKA_STOP_TIMEOUT' }),
  });
  let cluster: KafkaCluster | undefined;
  // A signal that arrives while the broker is starting is honoured once the start is over.
  const starting = life.start(async () => {
    cluster = await startKafka({
      version: values.version,
      log,
      ...(heapMb === undefined ? {} : { heapMb }),
      ...(port === undefined ? {} : { port }),
      ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
      ...(values.secure === true ? { secure: { users: [{ name: 'city', password: await securePassword(values['data-dir']) }] } } : {}),
    });
    const started = cluster;
    if (started.secure !== undefined) {
      const passwordFile = join(started.secure.certificates.dir, 'city.password');
      await writeFile(passwordFile, `${started.secure.users[0]?.password ?? ''}\n`, { mode: 0o600 });
      log('info', 'secured listeners', {
        saslSsl: started.secure.saslSsl.join(','),
        mtls: started.secure.mtls.join(','),
        caFile: started.secure.certificates.caFile,
        clientCertFile: started.secure.certificates.clientCertFile,
        clientKeyFile: started.secure.certificates.clientKeyFile,
        user: 'city',
        passwordFile,
      });
    }
    life.defer('broker', () => started.stop());
    if (values['no-topics'] !== true) {
      const suffix = values['topic-suffix'];
      const result = await ensureStandardTopics(started.brokers, suffix === undefined ? {} : { suffix });
      log('info', 'the standard topics exist', { created: result.created.length, existing: result.existing.length, ...(suffix === undefined ? {} : { suffix }) });
    }
  });
  let stopping = false;
  const signalled = closeOnSignals(
    () => {
      stopping = true;
      return life.close();
    },
    (message, fields) => log('info', message, fields),
  );
  try {
    await starting;
  } catch (err) {
    // Stopped by a signal while starting: close() stops what the start opened.
    if (kafkaErrors.is(err, 'KAFKA_STOPPED')) return signalled;
    throw err;
  }
  const broker = cluster;
  if (broker === undefined) throw kafkaErrors.create('KAFKA_STOPPED', 'no broker after start');
  process.stdout.write(`${broker.brokers.join(',')}\n`);
  log('info', 'serving; stop with Ctrl-C', { brokers: broker.brokers.join(','), log: broker.logFile ?? '-' });

  const outcome = await Promise.race([signalled, broker.exited.then(() => 'exited' as const)]);
  // The broker exits first when a signal stopped it: that is the clean stop, not a crash.
  if (outcome !== 'exited' || stopping) {
    const code = await signalled;
    if (code === 0) log('info', 'stopped');
    return code;
  }
  const { code, signal } = await broker.exited;
  await life.close().catch(() => undefined);
  throw kafkaErrors.create('KAFKA_EXITED', `on its own with ${code ?? signal}; see ${broker.logFile ?? 'its log'}`);
}

const COMMANDS: Record<string, (argv: readonly string[], log: Log) => Promise<number>> = {
  fetch: fetchCommand,
  start: startCommand,
  topics: topicsCommand,
};

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (isHelpWord(name)) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const command = name === undefined ? undefined : COMMANDS[name];
  if (command === undefined) throw usageError(name === undefined ? 'missing command' : `unknown command "${name}"`);
  return command(rest, textLog('kafka'));
}

await runMain('kafka', () => main(process.argv.slice(2)), USAGE);
