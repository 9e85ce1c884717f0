// The processing job: builds the processed zone from the lake, incrementally and idempotently.
//
// For each processed table and each partition (an hour, or a UTC day) whose source hours hold rows:
// - the partition's source fingerprint is the row count of every source hour it reads (per kind);
// - it is final once its last source hour has ended plus the table's allowed lateness;
// - it is built when it is new, when it is not final yet and its fingerprint or finality changed (the
//   open hour is rebuilt on every run while rows arrive), or with `rebuild`; a final partition whose
//   fingerprint changed received late rows: it is rebuilt, and the rebuild and the rows are counted
//   (partition parameters city.late_rebuilds and city.late_rows, and the run's report);
// - a build writes under a fresh version location, then one catalog call switches the partition to it
//   (see versions.ts). The same inputs give the same rows: every SELECT orders its output.
import { createHash } from 'node:crypto';
import type { Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { LakePartition } from '../lake/layout.ts';
import type { CatalogPartition, CatalogReader, VersionedCatalog } from '../ports/catalog/index.ts';
import type { ObjectStore } from '../ports/store/index.ts';
import { PROCESSED_TABLES, processedTablePrefix, tableLatenessMs, type ProcessedTable, type ProcessedTableName } from './definitions.ts';
import type { ProcessingEngine } from './engine.ts';
import { processedSql, sourceWindow } from './sql.ts';
import { DEFAULT_GRACE_MS, deleteDueRetirements, newBuildId, PARAM, sweepOrphans, switchedParameters, versionLocation } from '../lake/versions.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface ProcessOptions {
  store: ObjectStore;
  catalog: VersionedCatalog;
  engine: ProcessingEngine;
  /** Tables to build; all by default. */
  tables?: readonly ProcessedTableName[];
  /** Inclusive UTC date range (YYYY-MM-DD) of the partitions to consider. */
  from?: string;
  to?: string;
  /** Build every partition considered, changed or not. */
  rebuild?: boolean;
  /** Milliseconds a replaced location stays readable before it is deleted. */
  graceMs?: number;
  /**
   * Look for version folders no partition references (left by a run killed or failed before its switch)
   * and delete those older than the grace period. True by default; the schedule sweeps less often.
   */
  sweepOrphans?: boolean;
  now?: () => number;
  signal?: AbortSignal;
  log?: Log;
  /** Milliseconds spent per phase are added here (the benchmark prints the split). */
  timings?: Record<string, number>;
}

export type PartitionAction = 'new' | 'open' | 'closed' | 'late' | 'rebuild';

export interface ProcessedPartitionBuild {
  table: ProcessedTableName;
  partition: LakePartition;
  action: PartitionAction;
  final: boolean;
  rows: number | undefined;
  location: string;
  /** Source rows that arrived after the partition was final (late builds only). */
  lateRows: number;
}

export interface ProcessReport {
  build: string;
  built: ProcessedPartitionBuild[];
  /** Partitions left as they were (nothing changed). */
  unchanged: number;
  late: { partitions: number; rows: number };
  retired: { locations: number; files: number; orphans: number };
}

interface Planned {
  table: ProcessedTable;
  partition: LakePartition;
  start: Date;
  end: Date;
  final: boolean;
  fingerprint: string;
  sourceRows: number;
}

const hourKey = (ms: number): string => {
  const d = new Date(ms);
  return `${d.toISOString().slice(0, 10)}/${d.getUTCHours()}`;
};

export async function runProcessing(options: ProcessOptions): Promise<ProcessReport> {
  const { store, catalog, engine } = options;
  const now = options.now ?? Date.now;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const log = options.log ?? (() => undefined);
  const tables = options.tables === undefined ? PROCESSED_TABLES : PROCESSED_TABLES.filter((t) => options.tables?.includes(t.name));
  for (const name of options.tables ?? []) {
    if (!PROCESSED_TABLES.some((t) => t.name === name)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `/tables: unknown processed table ${name}`);
  }
  for (const [k, v] of [['from', options.from], ['to', options.to]] as const) {
    if (v !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(v)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `/${k} must be YYYY-MM-DD`);
  }
  const build = newBuildId(now());
  const timings = options.timings;
  const timed = async <T>(phase: string, work: () => Promise<T>): Promise<T> => {
    if (timings === undefined) return work();
    const t = performance.now();
    try {
      return await work();
    } finally {
      timings[phase] = (timings[phase] ?? 0) + performance.now() - t;
    }
  };
  const report: ProcessReport = { build, built: [], unchanged: 0, late: { partitions: 0, rows: 0 }, retired: { locations: 0, files: 0, orphans: 0 } };

  // Row counts per source hour of every kind the tables read, in one statement for the whole run.
  // The catalog is read while DuckDB counts (the two overlap; both are needed before any build).
  const snapshotRead = isReader(catalog) ? timed('catalog reads', () => catalog.tables()) : Promise.resolve(undefined);
  snapshotRead.catch(() => undefined);
  // An engine kept open across runs (the schedule's) first sees what was written or switched since its
  // last run: files new in the catalog's locations, a compaction's switch. It re-creates changed views only.
  await timed('refresh source views', () => engine.refresh());
  const kinds = [...new Set(tables.flatMap((t) => t.sources))];
  const counts = new Map<string, Map<string, number>>(kinds.map((k) => [k, new Map()]));
  if (kinds.length > 0) {
    const rows = await timed('source counts', () => engine.rows(
      kinds.map((k) => `SELECT '${k}' AS kind, event_date, event_hour, count(*) AS n FROM ${k} GROUP BY event_date, event_hour`).join(' UNION ALL '),
    ));
    for (const r of rows) counts.get(String(r.kind))?.set(`${String(r.event_date)}/${Number(r.event_hour)}`, Number(r.n));
  }
  const countsOf = async (kind: string): Promise<Map<string, number>> => counts.get(kind) ?? new Map();

  // Every table's catalog entry at once (reads overlap), then per table: the builds run one after the
  // other on the engine while the previous table's puts, switch and retirement finish beside them (file
  // and catalog I/O overlapping the next SELECTs). Every table's finish is awaited before returning, so a
  // run ends with each table switched or, killed, with nothing visible changed.
  // A catalog that can be read whole (the local one) is read once: a table already there with the same
  // columns and location needs no ensureTable (a lock and a read each), its partitions are in the read.
  const snapshot = await snapshotRead;
  const existingOf = new Map(
    await timed('catalog reads', () =>
      Promise.all(
        tables.map(async (table) => {
          const location = processedTablePrefix(table.name);
          const known = snapshot?.find((t) => t.name === table.name);
          if (known !== undefined && known.location === location && sameColumns(known.columns, table.schema.columns)) {
            return [table.name, new Map(known.partitions.map((p) => [p.values.join('/'), p]))] as const;
          }
          await catalog.ensureTable({ name: table.name, description: table.description, columns: table.schema.columns, partitionKeys: table.schema.partitionKeys, location });
          return [table.name, new Map((await catalog.partitions(table.name)).map((p) => [p.values.join('/'), p]))] as const;
        }),
      ),
    ),
  );
  const finishing: Promise<void>[] = [];
  let failed: unknown;
  const write = async (sql: string, location: string): Promise<{ rows: number | undefined; stored: Promise<void> }> => {
    if (engine.writeDeferred !== undefined) return engine.writeDeferred(sql, location, timings);
    return { rows: await engine.write(sql, location, timings), stored: Promise.resolve() };
  };

  for (const table of tables) {
    if (options.signal?.aborted || failed !== undefined) break;
    const prefix = processedTablePrefix(table.name);
    const existing = existingOf.get(table.name) ?? new Map<string, CatalogPartition>();
    const stored: Promise<void>[] = [];
    const planned = await plan(table, await Promise.all(table.sources.map(async (k) => ({ kind: k, counts: await countsOf(k) }))), now(), options);
    const switches: CatalogPartition[] = [];
    for (const p of planned) {
      if (options.signal?.aborted) break;
      const id = `${p.partition.event_date}/${p.partition.event_hour}`;
      const old = existing.get(id);
      const wasFinal = old?.parameters?.[PARAM.final] === 'true';
      const changed = old?.parameters?.[PARAM.source] !== p.fingerprint;
      let action: PartitionAction | undefined;
      if (old === undefined) action = 'new';
      else if (options.rebuild === true) action = 'rebuild';
      else if (wasFinal && changed) action = 'late';
      else if (!wasFinal && (changed || p.final)) action = p.final ? 'closed' : 'open';
      if (action === undefined) {
        report.unchanged++;
        continue;
      }
      const oldRows = Number(old?.parameters?.[PARAM.sourceRows] ?? 0);
      const lateRows = action === 'late' ? Math.max(0, p.sourceRows - oldRows) : 0;
      const location = versionLocation(prefix, p.partition, build);
      let rows: number | undefined;
      try {
        const written = await timed('write (SELECT + COPY)', () => write(processedSql(table, engine.dialect, { start: p.start, end: p.end, final: p.final }), location));
        rows = written.rows;
        const put = written.stored.catch((err: unknown) => {
          throw cloudErrors.create('CLD_PROCESSING', `${table.name} ${id}: ${errorMessage(err)}`, err);
        });
        put.catch(() => undefined);
        stored.push(put);
      } catch (err) {
        failed = cloudErrors.create('CLD_PROCESSING', `${table.name} ${id}: ${errorMessage(err)}`, err);
        break;
      }
      const parameters: Record<string, string> = {
        [PARAM.build]: build,
        [PARAM.final]: String(p.final),
        [PARAM.builtAt]: new Date(now()).toISOString(),
        [PARAM.source]: p.fingerprint,
        [PARAM.sourceRows]: String(p.sourceRows),
        [PARAM.lateRebuilds]: String(Number(old?.parameters?.[PARAM.lateRebuilds] ?? 0) + (action === 'late' ? 1 : 0)),
        [PARAM.lateRows]: String(Number(old?.parameters?.[PARAM.lateRows] ?? 0) + lateRows),
      };
      switches.push({ values: [p.partition.event_date, String(p.partition.event_hour)], location, parameters: switchedParameters(old, now(), parameters) });
      report.built.push({ table: table.name, partition: p.partition, action, final: p.final, rows, location, lateRows });
      if (action === 'late') {
        report.late.partitions++;
        report.late.rows += lateRows;
        log('warn', 'late rows rebuilt a final partition', { table: table.name, partition: id, lateRows });
      }
    }
    if (failed !== undefined) {
      // Nothing of this table switches; its files still being stored are waited for (then swept as orphans).
      finishing.push(Promise.allSettled(stored).then(() => undefined));
      break;
    }
    const finish = (async () => {
      // Every file of the build is durable before the switch makes it visible.
      await Promise.all(stored);
      // Locations retired by earlier runs whose grace period has passed are deleted first (none is
      // current); the switch then turns every partition built in this run visible and forgets the deleted
      // locations in the same catalog call: one write per table and run. Killed in between, the next run
      // finds them retired still and deletes nothing more.
      const replaced = new Set<string>();
      const next = new Map(existing);
      for (const p of switches) {
        const id = p.values.join('/');
        const location = existing.get(id)?.location;
        if (location !== undefined && location !== '') replaced.add(location);
        next.set(id, p);
      }
      const due = await timed('  retire', () => deleteDueRetirements(store, [...next.values()], now(), graceMs, replaced));
      const writes = new Map(switches.map((p) => [p.values.join('/'), p]));
      for (const p of due.changed) writes.set(p.values.join('/'), p);
      if (writes.size > 0) await timed('  catalog switch', () => catalog.replacePartitions(table.name, [...writes.values()]));
      report.retired.locations += due.locations;
      report.retired.files += due.files;
      if (options.sweepOrphans !== false) {
        report.retired.orphans += await timed('  sweep orphans', () => sweepOrphans(store, catalog, table.name, prefix, now(), graceMs, due.partitions));
      }
      log('debug', 'processed table', { table: table.name, built: switches.length });
    })();
    finish.catch((err: unknown) => {
      failed ??= err;
    });
    finishing.push(finish);
  }
  await timed('wait for the last puts, switches, retirements', () => Promise.allSettled(finishing));
  if (failed !== undefined) throw failed;
  return report;
}

/** The partitions of a table with source rows, their span, finality and fingerprint. */
async function plan(
  table: ProcessedTable,
  sources: readonly { kind: string; counts: Map<string, number> }[],
  now: number,
  options: Pick<ProcessOptions, 'from' | 'to'>,
): Promise<Planned[]> {
  const starts = new Set<number>();
  for (const { counts } of sources) {
    for (const key of counts.keys()) {
      const [date, hour] = key.split('/') as [string, string];
      const ms = Date.parse(`${date}T00:00:00Z`) + (table.grain === 'day' ? 0 : Number(hour) * HOUR_MS);
      if (options.from !== undefined && date < options.from) continue;
      if (options.to !== undefined && date > options.to) continue;
      starts.add(ms);
    }
  }
  const lateness = tableLatenessMs(table);
  const out: Planned[] = [];
  for (const startMs of [...starts].sort((a, b) => a - b)) {
    const start = new Date(startMs);
    const end = new Date(startMs + (table.grain === 'day' ? DAY_MS : HOUR_MS));
    const { from, to } = sourceWindow(table, { start, end });
    const parts: string[] = [];
    let sourceRows = 0;
    for (const { kind, counts } of sources) {
      for (let h = from.getTime(); h < to.getTime(); h += HOUR_MS) {
        const n = counts.get(hourKey(h));
        if (n === undefined) continue;
        parts.push(`${kind}:${hourKey(h)}=${n}`);
        sourceRows += n;
      }
    }
    out.push({
      table,
      partition: { event_date: start.toISOString().slice(0, 10), event_hour: start.getUTCHours() },
      start,
      end,
      final: now >= to.getTime() + lateness,
      fingerprint: createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32),
      sourceRows,
    });
  }
  return out;
}

function isReader(c: VersionedCatalog): c is VersionedCatalog & CatalogReader {
  return typeof (c as Partial<CatalogReader>).tables === 'function';
}

/** True when the catalog's columns are exactly the table's (names and types, in order). */
function sameColumns(have: readonly { name: string; type: string }[], want: readonly { name: string; type: string }[]): boolean {
  return have.length === want.length && have.every((c, i) => c.name === want[i]?.name && c.type === want[i]?.type);
}
