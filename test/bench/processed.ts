// Benchmark (not a test): building one hour of a 1,000-device city's processed zone with the job
// (`runProcessing`: source counts, plan, one COPY per partition, put, catalog switch, retirement), next
// to the same SELECTs alone in DuckDB over the same lake (each materialized as a temporary table), in
// the same run. Goal: the job within 1.5× the SELECTs.
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
  const job: number[] = [];
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    const engine = await createDuckDBProcessing(dir, store, catalog);
    const report = await runProcessing({ store, catalog, engine, now: () => NOW, rebuild: i > 0, graceMs: 0 });
    await engine.close();
    job.push(performance.now() - t);
    if (i === 0) process.stdout.write(`job: ${report.built.length} partitions, ${report.built.reduce((n, b) => n + (b.rows ?? 0), 0)} processed rows\n`);
  }

  const lake = await openLake(dir);
  const selects: number[] = [];
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    for (const table of PROCESSED_TABLES) {
      const end = new Date(START + (table.grain === 'day' ? 24 : 1) * 3_600_000);
      const start = new Date(table.grain === 'day' ? Date.UTC(2024, 4, 1) : START);
      await lake.query(`CREATE OR REPLACE TEMP TABLE bench_${table.name} AS ${processedSql(table, 'duckdb', { start, end, final: true })}`);
    }
    selects.push(performance.now() - t);
  }
  lake.close();
  await catalog.close();
  await store.close();

  const j = median(job);
  const s = median(selects);
  process.stdout.write(`job (median of ${runs}, first build then rebuilds): ${j.toFixed(0)} ms  [${job.map((x) => x.toFixed(0)).join(', ')}]\n`);
  process.stdout.write(`SELECTs alone in DuckDB (median of ${runs}): ${s.toFixed(0)} ms  [${selects.map((x) => x.toFixed(0)).join(', ')}]\n`);
  process.stdout.write(`ratio job / SELECTs: ${(j / s).toFixed(2)} (goal ≤ 1.5); measured on a shared 2-core machine, same run\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
