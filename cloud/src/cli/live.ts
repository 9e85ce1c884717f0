// `sink live`: the live KPIs and alerts as their own consumer group, until SIGINT/SIGTERM; optionally
// pushing finished windows and alerts to Power BI or a Fabric Eventstream.
import { readFileSync } from 'node:fs';
import { closeOnSignals, kafkaTopicSet, liveTopicSet, type Log } from '@city/protocol';
import type { LiveOutput } from '../live/output.ts';
import { brokersFlag, integerFlag, logFlag, parse, reporter, usageError } from './flags.ts';
import { LIVE_USAGE } from './usage.ts';

export async function liveCommand(args: readonly string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      brokers: { type: 'string' },
      group: { type: 'string' },
      'client-id': { type: 'string' },
      'topic-suffix': { type: 'string' },
      'allowed-lateness-ms': { type: 'string' },
      'idle-timeout-ms': { type: 'string' },
      'tick-ms': { type: 'string' },
      'close-timeout-ms': { type: 'string' },
      'session-timeout-ms': { type: 'string' },
      alerts: { type: 'string' },
      'log-level': { type: 'string' },
      output: { type: 'string' },
      'powerbi-dataset': { type: 'string' },
      'powerbi-workspace': { type: 'string' },
      'powerbi-api': { type: 'string' },
      'powerbi-push-url': { type: 'string', multiple: true },
    },
    LIVE_USAGE,
  );
  if (parsed === undefined) return 0;
  const { values } = parsed;
  const brokers = brokersFlag(values.brokers);
  const log = logFlag(values['log-level']);
  let alerts: unknown;
  if (values.alerts !== undefined) {
    try {
      alerts = JSON.parse(readFileSync(values.alerts, 'utf8'));
    } catch (err) {
      throw usageError(`--alerts ${values.alerts}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const output = await outputFromFlags(values, log);
  const suffix = values['topic-suffix'];
  const { createLive } = await import('../live/live.ts');
  const live = createLive({
    brokers,
    groupId: values.group,
    clientId: values['client-id'],
    topics: suffix === undefined ? undefined : kafkaTopicSet(suffix),
    liveTopics: suffix === undefined ? undefined : liveTopicSet(suffix),
    allowedLatenessMs: integerFlag(values['allowed-lateness-ms'], 'allowed-lateness-ms'),
    idleTimeoutMs: integerFlag(values['idle-timeout-ms'], 'idle-timeout-ms'),
    tickMs: integerFlag(values['tick-ms'], 'tick-ms'),
    closeTimeoutMs: integerFlag(values['close-timeout-ms'], 'close-timeout-ms'),
    sessionTimeoutMs: integerFlag(values['session-timeout-ms'], 'session-timeout-ms'),
    alerts: alerts as never,
    output,
    log,
  });
  let last = 0;
  live.on('tick', ({ watermark, stats }) => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    log('info', 'live', { watermark: Number.isFinite(watermark) ? new Date(watermark).toISOString() : null, ...stats, output: output?.stats() });
  });
  const stopped = closeOnSignals(() => live.close(), reporter(log));
  await live.start();
  return stopped;
}

type OutputFlags = {
  output?: string | undefined;
  'powerbi-dataset'?: string | undefined;
  'powerbi-workspace'?: string | undefined;
  'powerbi-api'?: string | undefined;
  'powerbi-push-url'?: string[] | undefined;
};

/** --output none|powerbi|powerbi-streaming|eventstream; secrets come from the environment only. */
async function outputFromFlags(values: OutputFlags, log: Log): Promise<LiveOutput | undefined> {
  const kind = values.output ?? 'none';
  const env = (name: string) => {
    const v = process.env[name];
    if (v === undefined || v === '') throw usageError(`--output ${kind} needs $${name}`);
    return v;
  };
  switch (kind) {
    case 'none':
      return undefined;
    case 'powerbi': {
      const dataset = values['powerbi-dataset'];
      if (dataset === undefined) throw usageError('--output powerbi needs --powerbi-dataset NAME');
      const { createPowerBiOutput } = await import('../live/powerbi/pusher.ts');
      const { cachedTokenSource, entraCredential, staticTokenSource } = await import('../live/powerbi/token.ts');
      // A token from the environment stands in for Entra (a gateway that hands out tokens, local tests).
      const fixed = process.env['POWERBI_ACCESS_TOKEN'];
      const tokens =
        fixed !== undefined && fixed !== ''
          ? staticTokenSource(fixed)
          : cachedTokenSource(await entraCredential({ tenantId: env('POWERBI_TENANT_ID'), clientId: env('POWERBI_CLIENT_ID'), clientSecret: env('POWERBI_CLIENT_SECRET') }));
      return createPowerBiOutput({ mode: 'push', datasetName: dataset, workspaceId: values['powerbi-workspace'], apiBase: values['powerbi-api'], tokens, log });
    }
    case 'powerbi-streaming': {
      const pushUrls: Record<string, string> = {};
      for (const spec of values['powerbi-push-url'] ?? []) {
        const at = spec.indexOf('=');
        if (at <= 0) throw usageError(`--powerbi-push-url must be TABLE=URL, got ${spec}`);
        pushUrls[spec.slice(0, at)] = spec.slice(at + 1);
      }
      if (Object.keys(pushUrls).length === 0) throw usageError('--output powerbi-streaming needs --powerbi-push-url TABLE=URL');
      const { createPowerBiOutput } = await import('../live/powerbi/pusher.ts');
      return createPowerBiOutput({ mode: 'streaming', pushUrls, log });
    }
    case 'eventstream': {
      const { createEventstreamOutput } = await import('../live/eventstream.ts');
      return createEventstreamOutput({ connectionString: env('EVENTSTREAM_CONNECTION_STRING'), log });
    }
    default:
      throw usageError('--output must be none, powerbi, powerbi-streaming or eventstream');
  }
}
