// `sink dashboard`: the operations dashboard (HTTP + server-sent events) until SIGINT/SIGTERM. Builds the
// page first when it is missing or older than its sources (or with --build).
import { closeOnSignals } from '@city/protocol';
import { brokersFlag, integerFlag, logFlag, parse, reporter } from './flags.ts';
import { DASHBOARD_USAGE } from './usage.ts';
import { WAREHOUSE_FLAGS } from './warehouse-flags.ts';

export async function dashboardCommand(args: readonly string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      brokers: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      group: { type: 'string' },
      'sink-group': { type: 'string' },
      'topic-suffix': { type: 'string' },
      lake: { type: 'string' },
      'page-dir': { type: 'string' },
      build: { type: 'boolean' },
      'delta-interval-ms': { type: 'string' },
      'max-vehicles': { type: 'string' },
      'log-level': { type: 'string' },
      ...WAREHOUSE_FLAGS,
    },
    DASHBOARD_USAGE,
  );
  if (parsed === undefined) return 0;
  const { values } = parsed;
  const brokers = brokersFlag(values.brokers);
  const log = logFlag(values['log-level']);
  const { buildPage, createDashboard, dashboardTopics, DEFAULT_PAGE_DIR, ensurePage } = await import('../dashboard/index.ts');
  const pageDir = values['page-dir'] ?? DEFAULT_PAGE_DIR;
  if (values.build === true) await buildPage(pageDir);
  else if ((await ensurePage(pageDir)).built) log('info', 'built the dashboard page', { pageDir });
  const suffix = values['topic-suffix'];
  // Only when asked: PGlite has one user at a time, and the city's loader may be it.
  const warehouse = values.warehouse === undefined ? undefined : await (await import('./warehouse.ts')).warehouseFromFlags(values);
  const dashboard = createDashboard({
    brokers,
    host: values.host,
    port: integerFlag(values.port, 'port'),
    groupId: values.group,
    sinkGroup: values['sink-group'],
    topics: suffix === undefined ? undefined : dashboardTopics(suffix),
    lakeDir: values.lake,
    pageDir,
    deltaIntervalMs: integerFlag(values['delta-interval-ms'], 'delta-interval-ms'),
    maxVehicles: integerFlag(values['max-vehicles'], 'max-vehicles'),
    ...(warehouse === undefined ? {} : { warehouse: () => warehouse }),
    log,
  });
  const stopped = closeOnSignals(() => dashboard.close().finally(() => warehouse?.close()), reporter(log));
  await dashboard.start();
  // The address on stdout, for people and for scripts that start the dashboard.
  process.stdout.write(`dashboard ${dashboard.url()}\n`);
  return stopped;
}
