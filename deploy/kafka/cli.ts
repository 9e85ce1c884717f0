/**
 * npm run kafka -- fetch                      download the broker's jars into the cache (CI does this first)
 * npm run kafka -- start [--data-dir D]       run a single-node KRaft broker in the foreground
 *                        [--heap-mb N] [--version V]
 *
 * `start` prints the bootstrap address (host:port) alone on stdout once the broker serves, so a
 * script can read it; progress goes to stderr. SIGINT/SIGTERM stop the broker cleanly; a second
 * signal gives up waiting. Without --data-dir the broker's data lives in a temp dir removed on exit.
 */
import { parseArgs } from 'node:util';
import { fetchKafka, KAFKA_VERSION, KafkaLauncherError, startKafka } from './launcher.ts';

const USAGE = `usage: node deploy/kafka/cli.ts fetch [--version V]
       node deploy/kafka/cli.ts start [--data-dir D] [--heap-mb N] [--version V]`;

const STOP_DEADLINE_MS = 30_000;

function log(line: string): void {
  process.stderr.write(`[kafka] ${line}\n`);
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        'heap-mb': { type: 'string' },
        version: { type: 'string', default: KAFKA_VERSION },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (rest.length > 0 || (command !== 'fetch' && command !== 'start')) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }

  if (command === 'fetch') {
    const libs = await fetchKafka({ version: values.version, log });
    log(`Kafka ${values.version} jars are in ${libs}`);
    return 0;
  }

  let heapMb: number | undefined;
  if (values['heap-mb'] !== undefined) {
    heapMb = Number(values['heap-mb']);
    if (!Number.isInteger(heapMb)) {
      process.stderr.write(`--heap-mb must be an integer, got "${values['heap-mb']}"\n`);
      return 2;
    }
  }

  // Signals that arrive while the broker is still starting are honoured once it is up.
  let stopRequested: NodeJS.Signals | undefined;
  let onStopRequested: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested !== undefined) {
      log(`second ${signal}: exiting without waiting for the broker`);
      process.exit(130);
    }
    stopRequested = signal;
    onStopRequested?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const cluster = await startKafka({
    version: values.version,
    heapMb,
    log,
    ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
  });
  process.stdout.write(`${cluster.brokers.join(',')}\n`);
  log(`broker log: ${cluster.logFile ?? '-'}; stop with Ctrl-C`);

  const outcome = await new Promise<'signal' | 'exited'>((resolveOutcome) => {
    if (stopRequested !== undefined) resolveOutcome('signal');
    onStopRequested = () => resolveOutcome('signal');
    void cluster.exited.then(() => resolveOutcome('exited'));
  });
  if (outcome === 'exited') {
    const { code, signal } = await cluster.exited;
    log(`broker exited on its own with ${code ?? signal}; see ${cluster.logFile ?? 'its log'}`);
    await cluster.stop();
    return 1;
  }

  log(`${stopRequested ?? 'signal'}: stopping the broker`);
  const deadline = setTimeout(() => {
    log(`broker did not stop within ${STOP_DEADLINE_MS} ms`);
    process.exit(1);
  }, STOP_DEADLINE_MS);
  deadline.unref();
  await cluster.stop();
  clearTimeout(deadline);
  log('stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof KafkaLauncherError) {
      process.stderr.write(`[kafka] ${err.code}: ${err.message}\n`);
    } else {
      process.stderr.write(`[kafka] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    process.exitCode = 1;
  },
);
