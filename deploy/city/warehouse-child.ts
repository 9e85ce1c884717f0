// The city's warehouse loader in a process of its own: PGlite is PostgreSQL in synchronous WebAssembly,
// and its start (initdb, 11.6 s of one unbroken task under load) and each load ran on the event loop of
// whatever process held it. The parent talks to it over the IPC channel: stats after every round, log
// lines, and read queries (the dashboard's warehouse freshness). It closes PGlite and exits on SIGTERM,
// SIGINT, a 'close' message, or when its parent goes away.
//   node deploy/city/warehouse-child.ts '{"lakeDir":…,"dataDir":…,"everyMs":15000}'
import type { LogLevel } from '@city/protocol';
import { closeOnSignals, runMain } from '@city/protocol';
import { cityErrors } from './errors.ts';
import { runWarehouseRounds, type WarehouseChildMessage, type WarehouseParentMessage } from './warehouse.ts';

async function main(): Promise<number> {
  const text = process.argv[2];
  if (text === undefined || process.send === undefined) throw cityErrors.create('CITY_USAGE', 'warehouse-child.ts needs its options as one JSON argument and an IPC channel');
  const options = JSON.parse(text) as { lakeDir: string; dataDir: string; everyMs: number };
  const send = (message: WarehouseChildMessage) => {
    if (process.connected) process.send?.(message);
  };
  const rounds = runWarehouseRounds({
    ...options,
    log: (level: LogLevel, message: string, fields?: Record<string, unknown>) => send({ type: 'log', level, message, ...(fields === undefined ? {} : { fields: JSON.parse(JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.message : v))) as Record<string, unknown> }) }),
    opened: (w) => send({ type: 'ready', engine: w.engine, dialect: w.dialect, schema: w.schema, canCopyCsv: w.canCopyCsv }),
    loaded: (stats) => send({ type: 'stats', stats }),
  });
  process.on('message', (m: WarehouseParentMessage) => {
    if (m.type !== 'query') return;
    const w = rounds.warehouse();
    if (w === undefined) {
      send({ type: 'error', id: m.id, message: 'the warehouse is not open yet' });
      return;
    }
    w.query(m.sql).then(
      (result) => send({ type: 'result', id: m.id, result }),
      (err: unknown) => send({ type: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) }),
    );
  });
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= rounds.close().then(() => send({ type: 'stats', stats: rounds.stats(), final: true })));
  const stopped = closeOnSignals(stop, () => undefined);
  const orphaned = new Promise<number>((done) => process.once('disconnect', () => void stop().then(() => done(0), () => done(1))));
  const asked = new Promise<number>((done) => process.on('message', (m: WarehouseParentMessage) => m.type === 'close' && void stop().then(() => done(0), () => done(1))));
  return Promise.race([stopped, orphaned, asked]);
}

const code = await runMain('city warehouse', main, 'usage: node deploy/city/warehouse-child.ts OPTIONS-JSON');
process.exit(code);
