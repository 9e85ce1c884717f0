// Benchmark (not a test): the field load of one gateway — 1,000 devices × 5 msg/s, QoS 1 — against the
// gateway as it ships (its CLI bundled to JavaScript with esbuild, better-sqlite3 left as the installed
// package, started with the service's V8 flags) and against a Mosquitto of our own, driven by the same
// load generator in the same run. Rounds alternate between the two targets so that whatever else the
// machine is doing falls on both; the figures that matter are the ratios.
//   node_modules/.bin/node test/bench/field-load.ts [--seconds 30] [--rounds 2] [--modes away,forward]
//     [--heap-mb 160] [--cpu-prof DIR] [--keep-bundle DIR] [--warmup 10] [--devices 1000] [--rate 5] [--floor]
// away: Kafka unreachable (a port nobody listens on), so only intake and the durable buffer count.
// forward: a Kafka broker of its own (or KAFKA_BROKERS), every record forwarded as it arrives.
// Per process and round: CPU per acknowledged message (utime + stime from /proc/<pid>/stat over the
// measured window ÷ messages acknowledged in it), % of one core, RSS, PUBACK p50/p99. Then the
// gateway's memory split: code and other file-backed pages, anonymous memory, V8 heap, external
// memory, and the cost of a connected idle device.
// --floor adds mqtt-floor.ts as targets in the away rounds: Node.js acknowledging QoS 1 with nothing
// else, and the same with one durable commit per window (fdatasync of a plain file; a SQLite row), so
// the gateway's figure splits into what the runtime and durability cost and what is the gateway's own.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, type WriteStream } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GATEWAY_NODE_FLAGS } from '@city/gateway';
import { kafkaTopicSet, sleep, topicSpecs, waitFor } from '@city/protocol';
import { ensureTopics, useKafka, type KafkaCluster } from '@city/deploy/kafka';
import { accepts, freePort } from '../support/net.ts';
import { cpuTicksOf } from '../support/proc.ts';
import { runLoad, type LoadResult } from './gateway-load.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    modes: { type: 'string', default: 'away,forward' },
    devices: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '5' },
    workers: { type: 'string', default: '2' },
    'heap-mb': { type: 'string', default: '160' },
    'cpu-prof': { type: 'string' },
    'keep-bundle': { type: 'string' },
    variant: { type: 'string', multiple: true },
    priority: { type: 'string' },
    floor: { type: 'boolean', default: false },
    'floor-window-ms': { type: 'string', default: '5' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: node test/bench/field-load.ts [--seconds 30] [--warmup 10] [--rounds 2] [--modes away,forward] [--devices 1000] [--rate 5]\n' +
      '                                     [--workers 2] [--heap-mb 160] [--cpu-prof DIR] [--keep-bundle DIR]\n' +
      '                                     [--variant "NAME|SOURCE-ROOT|EXTRA NODE FLAGS|ENV=VALUE,...|CONFIG JSON"]...   (default: this checkout as it ships)\n' +
      '                                     [--priority=-10]   (nice value for the generator and every target: root only; keeps a busy machine from starving them)\n' +
      '                                     [--floor [--floor-window-ms 5,20]]   (also mqtt-floor.ts: the least Node.js does to acknowledge QoS 1, without and with a durable commit per window)\n',
  );
  process.exit(0);
}
const seconds = Number(values.seconds);
const warmupS = Number(values.warmup);
const rounds = Number(values.rounds);
const modes = values.modes.split(',').filter(Boolean);
const devices = Number(values.devices);
const rate = Number(values.rate);
const workers = Number(values.workers);
const heapMb = Number(values['heap-mb']);
const cpuProfDir = values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']);
const ROOT = resolve(import.meta.dirname, '../..');
const run = `fl${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'field-load-'));
// Kept beside the bundles with --keep-bundle, else removed with the rest.
const logDir = values['keep-bundle'] === undefined ? dir : resolve(values['keep-bundle']);
mkdirSync(logDir, { recursive: true });
const log: WriteStream = createWriteStream(join(logDir, 'processes.log'));
// Every target's stdout and stderr are piped into it.
log.setMaxListeners(0);
/** The V8 flags of the gateway service (deploy/gateway-package/files/city-gateway.service). */
const SERVICE_FLAGS = [...GATEWAY_NODE_FLAGS, `--max-old-space-size=${heapMb}`];
/** The environment the service unit gives the gateway (a variant's own env comes on top). */
const SERVICE_ENV: Record<string, string> = { MALLOC_ARENA_MAX: '2' };
const TICKS_PER_S = 100; // USER_HZ on Linux

/** The CLI as it ships: one ESM bundle, its external packages installed beside it. */
async function bundleGateway(root: string, out: string): Promise<string> {
  mkdirSync(out, { recursive: true });
  // esbuild's CLI (the deploy workspace's), so this script adds no import of its own.
  const built = spawnSync(
    join(ROOT, 'node_modules/.bin/esbuild'),
    [
      `cli=${join(root, 'gateway/src/cli.ts')}`,
      ...(existsSync(join(root, 'gateway/src/health/system-worker.ts')) ? [`system-worker=${join(root, 'gateway/src/health/system-worker.ts')}`] : []),
      `--outdir=${out}`,
      '--out-extension:.js=.mjs',
      '--bundle',
      '--platform=node',
      '--format=esm',
      '--target=node22',
      // As the package ships them: the addon, and the Kafka client's WebAssembly codecs (they read their
      // .wasm beside themselves), resolved from node_modules beside the bundle.
      '--external:better-sqlite3',
      '--external:@platformatic/wasm-utils',
      '--external:@platformatic/dynamic-buffer',
      '--external:bufferutil',
      '--external:utf-8-validate',
      // Bundled CommonJS dependencies call require(); give the ESM bundle one.
      "--banner:js=import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      '--log-level=warning',
    ],
    { encoding: 'utf8' },
  );
  if (built.status !== 0) throw new Error(`esbuild failed: ${built.stderr}`);
  // Where node looks for the one external package (a field install has it in node_modules beside the bundle).
  if (!existsSync(join(out, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
  return join(out, 'cli.mjs');
}

interface ProcSample {
  at: number;
  ticks: number;
  rssKb: number;
}

function procSample(pid: number): ProcSample {
  const ticks = cpuTicksOf(pid);
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return { at: performance.now(), ticks, rssKb };
}

/** The largest anonymous resident mappings (kB), to tell V8's heap pages from malloc arenas and thread stacks. */
function largestAnonymous(pid: number, n: number): string {
  const maps: { size: number; rss: number }[] = [];
  let current: { size: number; rss: number; anon: boolean } | undefined;
  for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(\S*)/.exec(l);
    if (head) {
      if (current?.anon) maps.push(current);
      current = { size: 0, rss: 0, anon: head[1] === '0' && (head[2] === '' || head[2] === '[heap]') };
      continue;
    }
    const kv = /^(Size|Rss):\s+(\d+) kB/.exec(l);
    if (kv && current) current[kv[1] === 'Size' ? 'size' : 'rss'] = Number(kv[2]);
  }
  if (current?.anon) maps.push(current);
  return maps
    .sort((a, b) => b.rss - a.rss)
    .slice(0, n)
    .map((m) => `${(m.rss / 1024).toFixed(1)}/${(m.size / 1024).toFixed(0)}`)
    .join(' ');
}

/** Resident memory split from smaps_rollup (kB): anonymous, file-backed (code, mapped libraries). */
function residentSplit(pid: number): { anonKb: number; fileKb: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { anonKb: kb('Anonymous'), fileKb: kb('Rss') - kb('Anonymous') };
}

interface Target {
  name: string;
  port: number;
  pid: number;
  httpPort?: number;
  stop(): Promise<void>;
}

const priority = values.priority === undefined ? undefined : Number(values.priority);
if (priority !== undefined) setPriority(priority);

async function spawnTarget(name: string, command: string, args: string[], port: number, env: Record<string, string> = {}): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  // Through nice(1), so every thread the process starts has the priority (Linux sets it per thread).
  const argv = priority === undefined ? [command, ...args] : ['nice', '-n', String(priority), command, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const exited = once(child, 'exit');
  await waitFor(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited before listening; see ${join(logDir, 'processes.log')}`);
      return accepts(port);
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `${name} listening on ${port}` },
  );
  return {
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function startMosquitto(): Promise<Target> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  // Our own instance: the shared one on 1883 also carries other sessions' traffic, which /proc would count.
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 10000\n`);
  const { child, stop } = await spawnTarget('mosquitto', 'mosquitto', ['-c', conf], port);
  return { name: 'Mosquitto', port, pid: child.pid!, stop };
}

/** mqtt-floor.ts under the service's flags and environment: what Node.js itself costs at this load. */
async function startFloor(name: string, store?: 'db' | 'file', windowMs?: string): Promise<Target> {
  const port = await freePort();
  const args = [...SERVICE_FLAGS, join(ROOT, 'test/bench/mqtt-floor.ts'), '--port', String(port), ...(store === undefined ? [] : ['--durable', store, '--window-ms', windowMs ?? '5'])];
  const { child, stop } = await spawnTarget(name, process.execPath, args, port, SERVICE_ENV);
  return { name, port, pid: child.pid!, stop };
}

interface Variant {
  name: string;
  root: string;
  flags: string[];
  env: Record<string, string>;
  /** Merged into the gateway's config file, e.g. {"buffer":{"commitWindowMs":10}}. */
  config: Record<string, unknown>;
  bundle: string;
}

async function startGateway(variant: Variant, mode: string, brokers: string, topicPrefix: string | undefined): Promise<Target> {
  const port = await freePort();
  const httpPort = await freePort();
  const id = `${variant.name}-${mode}`;
  const config = join(dir, `${id}.json`);
  // No device registry (connect-time scrypt is not per message); the service's other defaults stand.
  writeFileSync(config, JSON.stringify({ auth: { mode: 'none' }, ...(topicPrefix === undefined ? {} : { topics: kafkaTopicSet(topicPrefix) }), ...variant.config }));
  const prof = cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, `${run}-${id}`)}`];
  const args = [
    ...SERVICE_FLAGS,
    ...variant.flags,
    ...prof,
    variant.bundle,
    'start',
    '--config',
    config,
    '--id',
    `gw-${id}`,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--buffer',
    join(dir, `${id}.db`),
    '--durability',
    'power-loss',
    '--brokers',
    brokers,
    '--http',
    `127.0.0.1:${httpPort}`,
  ];
  const { child, stop } = await spawnTarget(variant.name, process.execPath, args, port, { ...SERVICE_ENV, ...variant.env });
  return { name: variant.name, port, pid: child.pid!, httpPort, stop };
}

async function metrics(httpPort: number): Promise<(name: string, labels?: string) => number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return (name, labels) => {
    const line = text.split('\n').find((l) => l.startsWith(`city_gateway_${name}${labels === undefined ? ' ' : `{${labels}} `}`));
    return Number(line?.slice(line.lastIndexOf(' ') + 1) ?? NaN);
  };
}

interface Round {
  target: string;
  mode: string;
  result: LoadResult;
  cpuUsPerMsg: number;
  corePct: number;
  rssMaxMb: number;
}

/** One round of the paced fleet against one target; /proc sampled over the same window the generator measures. */
async function round(target: Target, mode: string, prefix: string, connectionRate = rate): Promise<Round> {
  let first: ProcSample | undefined;
  let last: ProcSample | undefined;
  let rssMaxKb = 0;
  const started = performance.now();
  const sampler = setInterval(() => {
    const now = performance.now() - started;
    if (now < warmupS * 1000) return;
    const s = procSample(target.pid);
    if (now <= (warmupS + seconds) * 1000) {
      first ??= s;
      last = s;
    }
    rssMaxKb = Math.max(rssMaxKb, s.rssKb);
  }, 500);
  const result = await runLoad({
    host: '127.0.0.1',
    port: target.port,
    connections: devices,
    inflight: 10,
    ratePerConnection: connectionRate,
    warmupMs: warmupS * 1000,
    durationMs: seconds * 1000,
    workers,
    prefix,
  });
  clearInterval(sampler);
  const spanS = first && last ? (last.at - first.at) / 1000 : NaN;
  const cpuS = first && last ? (last.ticks - first.ticks) / TICKS_PER_S : NaN;
  // Messages acknowledged per second over the window times the window /proc actually spanned.
  const acked = result.rate * spanS;
  return { target: target.name, mode, result, cpuUsPerMsg: (cpuS / acked) * 1e6, corePct: (cpuS / spanS) * 100, rssMaxMb: rssMaxKb / 1024 };
}

const f1 = (n: number) => n.toFixed(1);
function line(r: Round): string {
  const x = r.result;
  return (
    `  ${r.target.padEnd(11)} ${Math.round(x.rate).toString().padStart(5)} msg/s acked   ${f1(r.cpuUsPerMsg).padStart(6)} CPU-µs/msg   ${f1(r.corePct).padStart(5)} % of a core   ` +
    `RSS max ${f1(r.rssMaxMb).padStart(6)} MB   PUBACK p50 ${x.p50Ms.toFixed(2)} ms p99 ${x.p99Ms.toFixed(2)} ms max ${x.maxMs.toFixed(0)} ms` +
    (x.errors.length > 0 ? `   errors: ${x.errors.slice(0, 2).join('; ')}` : '')
  );
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Memory of the gateway under the load just run, and of the same process with devices connected but idle. */
async function memorySplit(gateway: Target, mode: string): Promise<void> {
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;
  const kb = (n: number) => `${(n / 1024).toFixed(1)} MB`;
  const show = async (label: string) => {
    const m = await metrics(gateway.httpPort!);
    const split = residentSplit(gateway.pid);
    const rss = procSample(gateway.pid).rssKb;
    process.stdout.write(
      `  ${label.padEnd(34)} RSS ${kb(rss)} = file-backed (code, libraries) ${kb(split.fileKb)} + anonymous ${kb(split.anonKb)}; ` +
        `V8 heap ${mb(m('process_heap_bytes', 'kind="used"'))} used of ${mb(m('process_heap_bytes', 'kind="total"'))}, external ${mb(m('process_external_memory_bytes'))}\n` +
        `    largest anonymous mappings, resident/size MB: ${largestAnonymous(gateway.pid, 8)}\n`,
    );
    return rss;
  };
  process.stdout.write(`memory of ${gateway.name} (${mode}):\n`);
  await show('after the load, devices gone');
  await sleep(5_000);
  const idle = await show('5 s later, no devices');
  // Devices connected, each publishing once a minute: what a connection holds, not what traffic does.
  const connected = runLoad({ host: '127.0.0.1', port: gateway.port, connections: devices, inflight: 1, ratePerConnection: 1 / 60, warmupMs: 0, durationMs: 25_000, workers, prefix: `${run}-idle-${mode}` });
  await sleep(20_000);
  const held = await show(`${devices} devices connected, idle`);
  process.stdout.write(`  per connected device: ${(((held - idle) * 1024) / devices / 1024).toFixed(1)} kB of RSS\n`);
  await connected;
}

let kafka: KafkaCluster | undefined;
const targets: Target[] = [];
try {
  const specs = values.variant ?? [`gateway|${ROOT}|`];
  const variants: Variant[] = [];
  for (const spec of specs) {
    const [name, root, flags, env, config] = spec.split('|');
    if (name === undefined || name === '' || root === undefined) throw new Error(`--variant "${spec}": expected NAME|SOURCE-ROOT|EXTRA NODE FLAGS`);
    const out = values['keep-bundle'] === undefined ? join(dir, name) : join(resolve(values['keep-bundle']), name);
    const vars = Object.fromEntries((env ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    variants.push({ name, root: resolve(root), flags: (flags ?? '').split(' ').filter(Boolean), env: vars, config: config === undefined || config === '' ? {} : (JSON.parse(config) as Record<string, unknown>), bundle: await bundleGateway(resolve(root), out) });
  }
  process.stdout.write(
    `field load: ${devices} devices × ${rate} msg/s QoS 1, ${workers} generator threads in this process; ${warmupS} s warm-up + ${seconds} s measured per round, ` +
      `${rounds} rounds per mode, the targets taking turns\n` +
      variants.map((v) => `${v.name}: ${v.bundle} (from ${v.root}) under node ${process.version} ${[...SERVICE_FLAGS, ...v.flags].join(' ')} env ${JSON.stringify({ ...SERVICE_ENV, ...v.env })}${Object.keys(v.config).length > 0 ? ` config ${JSON.stringify(v.config)}` : ''}, power-loss durability, health and /metrics on\n`).join('') +
      `(shared machine: other work runs meanwhile; compare the ratios, not the absolute figures${priority === undefined ? '' : `; generator and targets at nice ${priority}`})\n`,
  );
  const mosquitto = await startMosquitto();
  targets.push(mosquitto);
  for (const mode of modes) {
    let brokers: string;
    let prefix: string | undefined;
    if (mode === 'away') {
      brokers = `127.0.0.1:${await freePort()}`;
    } else if (mode === 'forward') {
      kafka ??= await useKafka();
      prefix = `${run}f`;
      await ensureTopics(kafka.brokers, topicSpecs(kafkaTopicSet(prefix)));
      brokers = kafka.brokers.join(',');
    } else {
      throw new Error(`--modes: unknown mode "${mode}" (away, forward)`);
    }
    const gateways: Target[] = [];
    for (const v of variants) {
      const g = await startGateway(v, mode, brokers, prefix);
      gateways.push(g);
      targets.push(g);
    }
    // The floors forward nothing: they belong to the away mode only.
    const floors: Target[] = [];
    if (values.floor && mode === 'away') {
      floors.push(await startFloor('floor'));
      for (const w of values['floor-window-ms'].split(',').filter(Boolean)) {
        floors.push(await startFloor(`floor-file${w}`, 'file', w));
        floors.push(await startFloor(`floor-db${w}`, 'db', w));
      }
    }
    targets.push(...floors);
    process.stdout.write(`mode ${mode}${mode === 'away' ? ' (Kafka unreachable)' : ` (forwarding to ${brokers})`}:\n`);
    const rows: Round[] = [];
    const cycle = [mosquitto, ...floors, ...gateways];
    for (let i = 0; i < rounds; i++) {
      // Rotate who goes first, so a trend in the machine's load does not favour one target.
      const order = cycle.map((_, k) => cycle[(k + i) % cycle.length]!);
      for (const t of order) {
        const r = await round(t, mode, `${run}-${mode}-${i}-${t.name}`);
        rows.push(r);
        process.stdout.write(`${line(r)}\n`);
      }
    }
    const m = rows.filter((r) => r.target === 'Mosquitto');
    const goal = mode === 'away' ? 2 : 2.5;
    for (const gw of [...floors, ...gateways]) {
      const g = rows.filter((r) => r.target === gw.name);
      const ratios = g.map((r, i) => r.cpuUsPerMsg / m[i]!.cpuUsPerMsg);
      process.stdout.write(
        `  ${gw.name}: CPU per message / Mosquitto's, per round ${ratios.map((r) => `${r.toFixed(2)}×`).join(', ')}; ` +
          `medians ${f1(median(g.map((r) => r.cpuUsPerMsg)))} / ${f1(median(m.map((r) => r.cpuUsPerMsg)))} µs = ${(median(g.map((r) => r.cpuUsPerMsg)) / median(m.map((r) => r.cpuUsPerMsg))).toFixed(2)}× (goal ≤ ${goal}×); ` +
          `PUBACK p99 median ${median(g.map((r) => r.result.p99Ms)).toFixed(1)} ms (goal ≤ 20 ms); RSS max ${f1(Math.max(...g.map((r) => r.rssMaxMb)))} MB (goal ≤ 150 MB)\n`,
      );
    }
    for (const f of floors) await f.stop();
    for (const gw of gateways) {
      await memorySplit(gw, mode);
      await gw.stop();
      if (cpuProfDir !== undefined) process.stdout.write(`  CPU profiles of ${gw.name} (one per thread): ${join(cpuProfDir, `${run}-${gw.name}-${mode}`)} (node test/bench/cpu-profile.ts FILE)\n`);
    }
  }
} finally {
  for (const t of targets) await t.stop();
  await kafka?.stop();
  log.end();
  rmSync(dir, { recursive: true, force: true });
}
