// Benchmark (not a test): building one hour of a 1,000-device city's processed zone with the job
// (`runProcessing`: refresh of the source views, source counts, plan, one COPY per partition, put,
// catalog switch, retirement), next to the same SELECTs alone in DuckDB over the same lake (each
// materialized as a temporary table), in the same run. Two forms of the job, alternating with the
// SELECTs so all three see the same load from the machine's other users:
// - one-shot: `cloud process` as a single command — opens the DuckDB engine (views of the source
//   tables), runs, closes;
// - steady-state round: the schedule's (sink run --process-every-ms, cloud process --every-ms, the
//   city) — one engine kept open across rounds; a round refreshes the views (a listing, nothing changed
//   here) and rebuilds every partition, deleting the versions the previous round replaced (grace 0), and
//   like the schedule's rounds between two sweeps (SWEEP_EVERY_MS) does not list the versions for orphans.
// Goal: the job within 1.5× the SELECTs. Prints wall and CPU (the process's, DuckDB's threads included)
// figures, ratios and each form's split by phase.
//   node test/bench/processed.ts [--devices 1000] [--runs 3]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createDuckDBProcessing,
  createLocalCatalog,
  createLocalFolderStore,
  openLake,
  PROCESSED_TABLES,
  processedSql,
  runProcessing,
} from '@city/cloud';
import { writeCityLake } from '../support/city-lake.ts';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '1000' }, runs: { type: 'string', default: '3' } } });
const devices = Number(values.devices);
const runs = Number(values.runs);
const START = Date.UTC(2024, 4, 1, 10);
const NOW = START + 3 * 3_600_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

interface Run {
  wall: number;
  cpu: number;
  timings: Record<string, number>;
}

const dir = mkdtempSync(join(tmpdir(), 'bench-processed-'));
try {
  let t = performance.now();
  const counts = await writeCityLake(dir, { devices, startMs: START });
  const rows = Object.values(counts).reduce((a, b) => a + b, 0);
  process.stdout.write(`lake: ${devices} devices, one hour, ${rows} rows (${JSON.stringify(counts)}), written in ${Math.round(performance.now() - t)} ms\n`);

  const store = createLocalFolderStore(dir);
  const catalog = createLocalCatalog(dir);
  const lake = await openLake(dir);
  const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  const oneShot: Run[] = [];
  const steady: Run[] = [];
  const selects: Run[] = [];

  // The first build (every partition new) before the measured runs: all measured runs rebuild.
  let cpu = process.cpuUsage();
  t = performance.now();
  const kept = await createDuckDBProcessing(dir, store, catalog);
  const keptOpen = { wall: performance.now() - t, cpu: cpuMs(process.cpuUsage(cpu)) };
  const first = await runProcessing({ store, catalog, engine: kept, now: () => NOW, graceMs: 0 });
  process.stdout.write(`job: ${first.built.length} partitions, ${first.built.reduce((n, b) => n + (b.rows ?? 0), 0)} processed rows\n`);

  for (let i = 0; i < runs; i++) {
    let timings: Record<string, number> = {};
    cpu = process.cpuUsage();
    t = performance.now();
    const engine = await createDuckDBProcessing(dir, store, catalog);
    timings['open engine (views of the source tables)'] = performance.now() - t;
    await runProcessing({ store, catalog, engine, now: () => NOW, rebuild: true, graceMs: 0, timings });
    const c = performance.now();
    await engine.close();
    timings['close engine'] = performance.now() - c;
    oneShot.push({ wall: performance.now() - t, cpu: cpuMs(process.cpuUsage(cpu)), timings });

    timings = {};
    cpu = process.cpuUsage();
    t = performance.now();
    await runProcessing({ store, catalog, engine: kept, now: () => NOW, rebuild: true, graceMs: 0, sweepOrphans: false, timings });
    steady.push({ wall: performance.now() - t, cpu: cpuMs(process.cpuUsage(cpu)), timings });

    cpu = process.cpuUsage();
    t = performance.now();
    for (const table of PROCESSED_TABLES) {
      const end = new Date(START + (table.grain === 'day' ? 24 : 1) * 3_600_000);
      const start = new Date(table.grain === 'day' ? Date.UTC(2024, 4, 1) : START);
      await lake.query(`CREATE OR REPLACE TEMP TABLE bench_${table.name} AS ${processedSql(table, 'duckdb', { start, end, final: true })}`);
    }
    selects.push({ wall: performance.now() - t, cpu: cpuMs(process.cpuUsage(cpu)), timings: {} });
  }
  await kept.close();
  lake.close();
  await catalog.close();
  await store.close();

  const s = median(selects.map((x) => x.wall));
  const sc = median(selects.map((x) => x.cpu));
  const line = (label: string, xs: Run[]) =>
    `${label.padEnd(38)} ${median(xs.map((x) => x.wall)).toFixed(0).padStart(5)} ms wall, ${median(xs.map((x) => x.cpu)).toFixed(0).padStart(5)} ms CPU  ` +
    `[wall ${xs.map((x) => x.wall.toFixed(0)).join(', ')}]\n`;
  process.stdout.write(`medians of ${runs} runs (all rebuild every partition):\n`);
  process.stdout.write(line('SELECTs alone in DuckDB', selects));
  process.stdout.write(line('job, one-shot (open, run, close)', oneShot));
  process.stdout.write(line('job, steady-state round (engine kept)', steady));
  process.stdout.write(`  (the kept engine's open, paid once before the rounds: ${keptOpen.wall.toFixed(0)} ms wall, ${keptOpen.cpu.toFixed(0)} ms CPU)\n`);
  // The split of each form's median run: where the job's time goes beyond the SELECTs. Indented phases
  // overlap others (puts and switches run beside the next table's SELECTs) and are not added up.
  for (const [label, xs] of [['one-shot', oneShot], ['steady-state round', steady]] as const) {
    const m = median(xs.map((x) => x.wall));
    const mid = (xs.find((x) => x.wall === m) ?? xs[0])?.timings ?? {};
    const accounted = Object.entries(mid).filter(([k]) => !k.startsWith(' ')).reduce((n, [, v]) => n + v, 0);
    process.stdout.write(`split of the median ${label} run (ms wall):\n`);
    for (const [phase, ms] of Object.entries(mid)) process.stdout.write(`  ${phase.padEnd(48)} ${ms.toFixed(1)}\n`);
    process.stdout.write(`  ${'other (plan, parameters)'.padEnd(48)} ${(m - accounted).toFixed(1)}\n`);
  }
  for (const [label, xs] of [['one-shot', oneShot], ['steady-state round', steady]] as const) {
    const pairs = xs.map((x, i) => x.wall / (selects[i] as Run).wall);
    const cpuPairs = xs.map((x, i) => x.cpu / (selects[i] as Run).cpu);
    process.stdout.write(
      `ratio job (${label}) / SELECTs: ${(median(xs.map((x) => x.wall)) / s).toFixed(2)} wall (median of per-run pairs ${median(pairs).toFixed(2)}), ` +
        `${(median(xs.map((x) => x.cpu)) / sc).toFixed(2)} CPU (pairs ${median(cpuPairs).toFixed(2)}) (goal ≤ 1.5)\n`,
    );
  }
  process.stdout.write(`measured on a shared 2-core machine under other users' load, same run, alternating\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
