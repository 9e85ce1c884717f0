// Benchmark (not a test): bytes the gateway allocates per message at the field load, by function.
// Garbage is what the collector pays for (a fifth or more of the gateway's CPU at the field load), and
// unlike CPU time on a shared machine it hardly depends on what else runs. The gateway runs in this
// process (Kafka away, power-loss durability), the paced fleet of gateway-load.ts in worker threads
// (their own heaps, not sampled); V8's sampling heap profiler counts every sampled allocation, also
// the ones already collected.
//   node_modules/.bin/node --max-semi-space-size=4 test/bench/gateway-alloc.ts [--seconds 10] [--warmup 8]
//     [--devices 1000] [--rate 5] [--top 30] [--out FILE.heapprofile] [--promoted]
// --promoted counts only what outlived a young-generation collection: what the full collections pay for.
import { Session } from 'node:inspector/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGateway } from '@city/gateway';
import { silentLog, sleep } from '@city/protocol';
import { runLoad } from './gateway-load.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '8' },
    devices: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '5' },
    top: { type: 'string', default: '30' },
    out: { type: 'string' },
    promoted: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node test/bench/gateway-alloc.ts [--seconds 10] [--warmup 8] [--devices 1000] [--rate 5] [--top 30] [--out FILE.heapprofile] [--promoted]\n');
  process.exit(0);
}
const seconds = Number(values.seconds);
const warmupS = Number(values.warmup);
const top = Number(values.top);

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

const dir = mkdtempSync(join(tmpdir(), 'gateway-alloc-'));
const gateway = createGateway(
  {
    gatewayId: 'gw-alloc',
    mqtt: { host: '127.0.0.1', port: 0 },
    healthIntervalMs: 0,
    kafka: { brokers: ['127.0.0.1:1'], requestTimeoutMs: 200 },
    drainOnCloseMs: 0,
    buffer: { path: join(dir, 'buffer.db'), durability: 'power-loss' },
  },
  silentLog,
);
const session = new Session();
try {
  await gateway.start();
  session.connect();
  const load = runLoad({
    host: '127.0.0.1',
    port: gateway.port(),
    connections: Number(values.devices),
    inflight: 10,
    ratePerConnection: Number(values.rate),
    warmupMs: warmupS * 1000,
    durationMs: seconds * 1000,
    workers: 2,
    prefix: `alloc${Date.now()}`,
  });
  await sleep(warmupS * 1000);
  const before = gateway.stats().received;
  await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !values.promoted });
  await sleep(seconds * 1000);
  const { profile } = await session.post('HeapProfiler.stopSampling');
  const messages = gateway.stats().received - before;
  const result = await load;
  if (values.out !== undefined) writeFileSync(values.out, JSON.stringify(profile));

  const bySelf = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  const area = (url: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? /\/(gateway|protocol)\/src\/([^/]+)/.exec(url)?.slice(1).join('/') ?? (url.startsWith('node:') ? url.split('/').slice(0, 2).join('/') : url || '(native)');
  const walk = (node: SampleNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    if (node.selfSize > 0) {
      const name = `${functionName || '(anonymous)'}  ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
      bySelf.set(name, (bySelf.get(name) ?? 0) + node.selfSize);
      byArea.set(area(url), (byArea.get(area(url)) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child);
  };
  walk(profile.head as unknown as SampleNode);
  const perMsg = (bytes: number) => `${Math.round(bytes / messages).toString().padStart(6)} B/msg`;
  process.stdout.write(
    `${Number(values.devices)} devices × ${Number(values.rate)} msg/s QoS 1, ${seconds} s sampled after ${warmupS} s: ${messages} messages (generator: ${Math.round(result.rate)} msg/s acked, PUBACK p99 ${result.p99Ms.toFixed(1)} ms)\n` +
      `allocated ${perMsg(total)} ${values.promoted ? '(sampled, surviving the young generation: promoted, collected by a full GC or still alive)' : '(sampled, collected objects included)'}\nby area:\n` +
      [...byArea].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `  ${perMsg(v)}  ${k}`).join('\n') +
      '\nby function:\n' +
      [...bySelf].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `  ${perMsg(v)}  ${k}`).join('\n') +
      '\n',
  );
} finally {
  session.disconnect();
  await gateway.close();
  rmSync(dir, { recursive: true, force: true });
}
