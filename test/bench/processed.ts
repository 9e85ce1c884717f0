// Benchmark (not a test): building one hour of a 1,000-device city's processed zone with the job
// (`runProcessing`: source counts, plan, one COPY per partition, put, catalog switch, retirement), next
// to the same SELECTs alone in DuckDB over the same lake (each materialized as a temporary table), in
// the same run, alternating with the job's runs. Goal: the job within 1.5× the SELECTs. Prints the job's
// split by phase.
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

const dir = mkdtempSync(join(tmpdir(), 'bench-processed-'));
try {
  let t = performance.now();
  const counts = await writeCityLake(dir, { devices, startMs: START });
  const rows = Object.values(counts).reduce((a, b) => a + b, 0);
  process.stdout.write(`lake: ${devices} devices, one hour, ${rows} rows (${JSON.stringify(counts)}), written in ${Math.round(performance.now() - t)} ms\n`);

  const store = createLocalFolderStore(dir);
  const catalog = createLocalCatalog(dir);
  const lake = await openLake(dir);
  // Job and SELECTs alternate, so both see the same load from the machine's other users; wall time and
  // the process's CPU time (DuckDB's threads included) are both taken.
  const job: { wall: number; cpu: number; timings: Record<string, number> }[] = [];
  const selects: { wall: number; cpu: number }[] = [];
  const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  for (let i = 0; i < runs; i++) {
    const timings: Record<string, number> = {};
    let cpu = process.cpuUsage();
    t = performance.now();
    const engine = await createDuckDBProcessing(dir, store, catalog);
    timings['open engine (views of the source tables)'] = performance.now() - t;
    const report = await runProcessing({ store, catalog, engine, now: () => NOW, rebuild: i > 0, graceMs: 0, timings });
    const c = performance.now();
    await engine.close();
    timings['close engine'] = performance.now() - c;
    job.push({ wall: performance.now() - t, cpu: cpuMs(process.cpuUsage(cpu)), timings });
    if (i === 0) process.stdout.write(`job: ${report.built.length} partitions, ${report.built.reduce((n, b) => n + (b.rows ?? 0), 0)} processed rows\n`);

    cpu = process.cpuUsage();
    t = performance.now();
    for (const table of PROCESSED_TABLES) {
      const end = new Date(START + (table.grain === 'day' ? 24 : 1) * 3_600_000);
      const start = new Date(table.grain === 'day' ? Date.UTC(2024, 4, 1) : START);
      await lake.query(`CREATE OR REPLACE TEMP TABLE bench_${table.name} AS ${processedSql(table, 'duckdb', { start, end, final: true })}`);
    }
    selects.push({ wall: performance.now() - t, cpu: cpuMs(process.cpuUsage(cpu)) });
  }
  lake.close();
  await catalog.close();
  await store.close();

  const j = median(job.map((x) => x.wall));
  const s = median(selects.map((x) => x.wall));
  const jc = median(job.map((x) => x.cpu));
  const sc = median(selects.map((x) => x.cpu));
  const pairs = job.map((x, i) => x.wall / (selects[i] as { wall: number }).wall);
  process.stdout.write(`job (median of ${runs}, first build then rebuilds): ${j.toFixed(0)} ms wall, ${jc.toFixed(0)} ms CPU  [${job.map((x) => x.wall.toFixed(0)).join(', ')}]\n`);
  process.stdout.write(`SELECTs alone in DuckDB (median of ${runs}): ${s.toFixed(0)} ms wall, ${sc.toFixed(0)} ms CPU  [${selects.map((x) => x.wall.toFixed(0)).join(', ')}]\n`);
  // The split of the median job run: where the job's time goes beyond the SELECTs. Indented phases
  // overlap others (puts and switches run beside the next table's SELECTs) and are not added up.
  const mid = (job.find((x) => x.wall === j) ?? job[0])?.timings ?? {};
  const accounted = Object.entries(mid).filter(([k]) => !k.startsWith(' ')).reduce((n, [, v]) => n + v, 0);
  process.stdout.write(`split of the median job run (ms wall):\n`);
  for (const [phase, ms] of Object.entries(mid)) process.stdout.write(`  ${phase.padEnd(48)} ${ms.toFixed(1)}\n`);
  process.stdout.write(`  ${'other (plan, parameters)'.padEnd(48)} ${(j - accounted).toFixed(1)}\n`);
  process.stdout.write(
    `ratio job / SELECTs: ${(j / s).toFixed(2)} wall (median of per-run pairs ${median(pairs).toFixed(2)}), ${(jc / sc).toFixed(2)} CPU (goal ≤ 1.5); ` +
      `measured on a shared 2-core machine under other users' load, same run, alternating\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
