// Process entry of the sink: `run` consumes Kafka into the lake until SIGINT/SIGTERM, `query` runs SQL
// over the lake, `compact` merges small lake files, `process` builds the processed zone, `live` computes
// live KPIs and alerts. The library API lives in index.ts; this file only dispatches. Each command is
// loaded when it runs, so --help and usage errors do not load DuckDB, the AWS SDK or kafkajs.
import { isHelpWord, runMain } from '@city/protocol';
import { usageError } from './flags.ts';
import { USAGE } from './usage.ts';

export { USAGE };

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (isHelpWord(command)) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  switch (command) {
    case 'run':
      return (await import('./run.ts')).runCommand(rest);
    case 'query':
      return (await import('./query.ts')).queryCommand(rest);
    case 'compact':
      return (await import('./compact.ts')).compactCommand(rest);
    case 'dashboard':
      return (await import('./dashboard.ts')).dashboardCommand(rest);
    case 'process':
      return (await import('./process.ts')).processCommand(rest);
    case 'live':
      return (await import('./live.ts')).liveCommand(rest);
    case 'warehouse':
      return (await import('./warehouse.ts')).warehouseCommand(rest);
    case undefined:
      throw usageError('a command is required: run, query, compact, process, live, warehouse or dashboard');
    default:
      throw usageError(`unknown command "${command}"`);
  }
}

if (import.meta.main) await runMain('sink', () => main(process.argv.slice(2)), USAGE);
