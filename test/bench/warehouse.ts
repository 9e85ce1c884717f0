// Benchmark (not a test): warehouse load rate from the lake, next to `psql \copy` of the same rows from
// CSV into the same PostgreSQL server in the same run.
//   npm run bench:warehouse -- [--rows 200000] [--files 20] [--url postgres://postgres@127.0.0.1:5432/test] [--repeat 3] [--no-pglite]
// \copy and the loader take turns, --repeat times; the ratio printed is the median of the rounds' ratios.
// The loader's figure is end to end: list the lake, check each Parquet file, DuckDB → CSV, COPY into
// staging, dedupe by event id, MERGE into the fact table, dimensions and ledger, one transaction per
// batch. `\copy` loads the CSV of the same rows (written beforehand, not timed) into a table with the
// same DDL (primary key included). Ratio = loader rows/s ÷ \copy rows/s; the goal is ≥ 0.5. Also printed:
// the same ratio in rows per CPU second (client process + its PostgreSQL backend, from /proc), steadier
// than wall time on a shared machine.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DuckDBInstance, quotedString } from '@duckdb/node-api';
import { partitionOf } from '@city/protocol';
import { createLocalFolderStore, createPgliteWarehouse, createPostgresWarehouse, createTableSql, createWarehouseLoader, factTable, type LakeFile, type Warehouse } from '@city/cloud';
import { rowsOf, sampleEvent, writeLake } from '../support/lake.ts';
import { cpuTicksOf, USER_HZ } from '../support/proc.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '200000' },
    files: { type: 'string', default: '20' },
    url: { type: 'string', default: process.env['TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'no-pglite': { type: 'boolean' },
    repeat: { type: 'string', default: '3' },
    help: { type: 'boolean' },
  },
});
if (values.help === true) {
  process.stdout.write('usage: npm run bench:warehouse -- [--rows 200000] [--files 20] [--url postgres://…] [--repeat 3] [--no-pglite]\n');
  process.exit(0);
}
const totalRows = Number(values.rows);
const fileCount = Number(values.files);
const url = values.url;
const dir = mkdtempSync(join(tmpdir(), 'warehouse-bench-'));
const lakeDir = join(dir, 'lake');
const run = `whbench_${Date.now()}`;

async function buildLake(): Promise<void> {
  const files: LakeFile[] = [];
  const perFile = Math.ceil(totalRows / fileCount);
  const start = Date.UTC(2024, 4, 1);
  let offset = 0n;
  for (let f = 0; f < fileCount; f++) {
    // Four hours of data; each file inside one hour, as the sink writes them.
    const hourStart = start + Math.floor((f * 4) / fileCount) * 3_600_000;
    const events = [];
    for (let i = f * perFile; i < Math.min(totalRows, (f + 1) * perFile); i++) {
      events.push(sampleEvent('vehicle', i, { idPrefix: run, dateObserved: hourStart + (i % 3_600) * 1_000 }));
    }
    if (events.length === 0) continue;
    const rows = rowsOf('vehicle', events);
    files.push({ table: 'vehicle', partition: partitionOf(hourStart), topic: 'city.vehicle.v1', kafkaPartition: 0, firstOffset: offset, lastOffset: offset + BigInt(rows.length - 1), rows });
    offset += BigInt(rows.length);
  }
  await writeLake(lakeDir, files);
}

/** CPU milliseconds (user + system) a process has used so far, from /proc. */
function cpuMsOf(pid: number): number {
  return (cpuTicksOf(pid) * 1000) / USER_HZ;
}
const ownCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Rate {
  rows: number;
  seconds: number;
  /** CPU ms of the client side (this process with DuckDB's threads, or psql) plus the server backend. */
  cpuMs?: number;
}

async function loaderRate(name: string, warehouse: Warehouse): Promise<Rate> {
  const store = createLocalFolderStore(lakeDir);
  const loader = createWarehouseLoader({ warehouse, store, tables: ['vehicle'] });
  // PostgreSQL with one pooled connection: its backend is the one doing the server's share of the load.
  const backend = async () => (warehouse.engine === 'postgres' ? Number((await warehouse.query('SELECT pg_backend_pid() AS p')).rows[0]?.p) : undefined);
  try {
    await loader.init();
    const pid = await backend();
    const c0 = ownCpuMs() + (pid === undefined ? 0 : cpuMsOf(pid));
    const t0 = process.hrtime.bigint();
    const result = await loader.load();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const c1 = ownCpuMs() + (pid === undefined ? 0 : cpuMsOf(pid));
    const same = pid === undefined || (await backend()) === pid;
    const count = await warehouse.query('SELECT count(*) AS n FROM vehicle');
    const rows = Number(count.rows[0]?.n);
    const cpuMs = same ? c1 - c0 : undefined;
    console.log(
      `${name.padEnd(22)} ${rows} rows in ${seconds.toFixed(2)} s = ${Math.round(rows / seconds)} rows/s (${result.batches} batches, ${result.objects} files)` +
        `${cpuMs === undefined ? '' : `; ${cpuMs.toFixed(0)} ms CPU (this process + its backend)`}`,
    );
    return { rows, seconds, ...(cpuMs === undefined ? {} : { cpuMs }) };
  } finally {
    await loader.close();
    await store.close();
  }
}

async function psqlCopyRate(schema: string, name: string): Promise<Rate> {
  const table = factTable('vehicle');
  const csv = join(dir, 'vehicle.csv');
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  await db.run(`SET TimeZone = 'UTC'`);
  const cols = table.columns.map((c) =>
    c.name === 'event_date' ? 'event_date' : c.name === 'event_hour' ? 'event_hour' : `"${c.name}"`,
  );
  await db.run(
    `COPY (SELECT ${cols.join(', ')} FROM read_parquet(${quotedString(join(lakeDir, 'curated/**/*.parquet'))}, hive_partitioning = true, hive_types = {'event_date': VARCHAR, 'event_hour': BIGINT})) ` +
      `TO ${quotedString(csv)} (FORMAT csv, HEADER false)`,
  );
  db.closeSync();
  instance.closeSync();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await client.query(createTableSql({ ...table, name }, 'postgres', schema));
  await client.end();
  // psql reads its commands from a pipe: first its backend's pid, then (timed, CPU read from /proc for
  // psql and its backend before and after) the \copy, then a marker.
  const psql = spawn('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-A', '-t'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: psql.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    if (line.done === true) throw new Error('psql ended early');
    return line.value;
  };
  psql.stdin.write('SELECT pg_backend_pid();\n');
  const backend = Number(await next());
  const cpu = () => cpuMsOf(psql.pid as number) + cpuMsOf(backend);
  const c0 = cpu();
  const t0 = process.hrtime.bigint();
  psql.stdin.write(`\\copy "${schema}"."${name}" FROM '${csv}' WITH (FORMAT csv)\nSELECT 'copied';\n`);
  while ((await next()) !== 'copied');
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuMs = cpu() - c0;
  psql.stdin.end();
  const [status] = (await once(psql, 'exit')) as [number | null];
  if (status !== 0) throw new Error(`psql failed with status ${status}`);
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  const rows = Number((await check.query(`SELECT count(*) AS n FROM "${schema}"."${name}"`)).rows[0].n);
  await check.end();
  console.log(`${'psql \\copy (CSV)'.padEnd(22)} ${rows} rows in ${seconds.toFixed(2)} s = ${Math.round(rows / seconds)} rows/s; ${cpuMs.toFixed(0)} ms CPU (psql + its backend)`);
  return { rows, seconds, cpuMs };
}

const repeat = Number(values.repeat);
const schemas: string[] = [];
try {
  console.log(`warehouse load benchmark: ${totalRows} vehicle rows in ${fileCount} Parquet files; PostgreSQL at ${url.replace(/\/\/[^@]*@/, '//')}`);
  console.log('(figures measured on a shared 2-core machine with other work running: compare the ratio, not the absolute rates)');
  await buildLake();
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  let copyRate = 0;
  for (let i = 0; i < repeat; i++) {
    const schema = `${run}_pg${i}`;
    schemas.push(schema);
    const copy = await psqlCopyRate(schema, 'vehicle_copy');
    const postgres = createPostgresWarehouse({ connectionString: url, schema, maxConnections: 1 });
    let pgRate: Rate;
    try {
      pgRate = await loaderRate('loader → PostgreSQL', postgres);
    } finally {
      await postgres.close();
    }
    copyRate = copy.rows / copy.seconds;
    ratios.push(pgRate.rows / pgRate.seconds / copyRate);
    // Rows per CPU second, loader ÷ \copy: the same work measured by what it costs rather than by how
    // long it waited for a core (the wall figure moves with the machine's other users).
    if (pgRate.cpuMs !== undefined && copy.cpuMs !== undefined) cpuRatios.push(pgRate.rows / pgRate.cpuMs / (copy.rows / copy.cpuMs));
    console.log(`  round ${i + 1}: ratio loader/\\copy ${ratios[i]!.toFixed(2)} wall${cpuRatios.length > i ? `, ${cpuRatios[i]!.toFixed(2)} CPU` : ''}`);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  console.log(`ratio loader/\\copy into PostgreSQL, median of ${repeat}: ${med(ratios).toFixed(2)} wall (goal ≥ 0.5; rounds ${ratios.map((r) => r.toFixed(2)).join(', ')})`);
  if (cpuRatios.length > 0) console.log(`rows per CPU second, loader/\\copy, median of ${cpuRatios.length}: ${med(cpuRatios).toFixed(2)} (rounds ${cpuRatios.map((r) => r.toFixed(2)).join(', ')})`);
  if (values['no-pglite'] !== true) {
    const pglite = await createPgliteWarehouse({ dataDir: join(dir, 'pglite'), schema: 'city' });
    try {
      const lite = await loaderRate('loader → PGlite', pglite);
      console.log(`ratio loader→PGlite / the last \\copy into PostgreSQL: ${(lite.rows / lite.seconds / copyRate).toFixed(2)}`);
    } finally {
      await pglite.close();
    }
  }
} finally {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
  rmSync(dir, { recursive: true, force: true });
}
