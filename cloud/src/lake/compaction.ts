// Lake compaction: merges the small files of one Kafka topic-partition inside one lake partition into
// files of about a target size, without a reader ever seeing a row twice or not at all.
//
// Why a reader never sees a duplicate or a gap (readers must list keys and pass them through liveFiles()):
// - A merged file is named after the Kafka offset range its inputs cover: <topic>+<p>+<first>+<last>.parquet
//   (lake/layout.ts). liveFiles() hides every input file (<topic>+<p>+<first>.parquet) whose first offset
//   lies in the range of a merged file of the same topic-partition in the same folder, and every merged
//   file inside a wider one.
// - Step 1 writes the merged file to a scratch path and put()s it: atomic and durable. Killed before that,
//   the lake holds only the inputs (scratch files are never listed): the old view, exact.
// - From the moment the merged file exists, its inputs are hidden, all at once, by its name alone: the
//   new view, exact, because it holds exactly the inputs' rows (checked by row count before the put).
// - Step 2 deletes the inputs. Killed midway, the survivors stay hidden; the next run on the partition
//   deletes them first (roll forward). A deletion lost to a power cut only brings back a hidden file.
// - The sink may still rewrite the files it has not committed after a crash (same name, maybe more rows).
//   By hand, compaction leaves the newest file of each topic-partition alone unless told the partition is
//   sealed (keepNewest: false); the sink's own schedule passes `eligible`, which admits only files below
//   the offsets it has committed (final: a replay starts at the commit).
// - One compactor per topic-partition at a time: two racing on one could write overlapping ranges.
// A reader that listed keys just before step 2 may find an input gone and must list again (an error,
// never a wrong answer).
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, quotedIdentifier, quotedString, type DuckDBConnection } from '@duckdb/node-api';
import { cloudErrors, errorMessage } from '../errors.ts';
import { isLocalStore, type ObjectStore } from '../ports/store/index.ts';
import {
  ALL_LAKE_TABLES,
  FOOTER_LAST_OFFSET,
  footerMetadata,
  isLakeTable,
  mergedFileName,
  parquetCodecOptions,
  parseLakeFileKey,
  partitionOfKey,
  partitionPrefix,
  tablePrefix,
  tableSchema,
  type LakeFileKey,
  type LakePartition,
  type LakeTable,
} from './layout.ts';
import { compactionOptions, type CompactionConfig } from './compaction-options.ts';
import { SQL_TYPES } from './parquet.ts';
import { supersededFiles } from './reader.ts';
import { carryOver, copyObject, DEFAULT_GRACE_MS, filesAt, newBuildId, PARAM, retiredOf, switchedParameters, versionLocation } from './versions.ts';
import type { CatalogPartition, VersionedCatalog } from '../ports/catalog/port.ts';

export interface CompactOptions extends Partial<CompactionConfig> {
  /** Only files it returns true for are merged or rolled forward (the sink: committed files of its own partitions). */
  eligible?: (file: LakeFileKey) => boolean;
  /** Called after each durable step; a progress log for the CLI and the crash tests. */
  onProgress?: (step: CompactStep) => void;
  /** Stops between steps; the lake stays consistent and the next run carries on. */
  signal?: AbortSignal;
  /**
   * With a catalog, compaction replaces partitions by version (see compactVersioned): only partitions
   * registered there are compacted, and readers that go through the catalog never see a rewrite.
   */
  catalog?: VersionedCatalog;
  /** Milliseconds a replaced location stays readable before it is deleted (with a catalog). */
  graceMs?: number;
  now?: () => number;
}

export type CompactStep =
  | { step: 'merged'; key: string; inputs: string[]; rows: number; bytes: number }
  | { step: 'deleted'; key: string; supersededBy: string }
  | { step: 'carried'; key: string; from: string }
  | { step: 'switched'; location: string; from: string }
  | { step: 'retired'; location: string; files: number };

export interface PartitionCompaction {
  table: LakeTable;
  partition: LakePartition;
  /** Files before and after. */
  filesBefore: number;
  filesAfter: number;
  merged: { key: string; inputs: number; rows: number; bytes: number }[];
  /** Superseded files deleted (including those a killed run left behind). */
  deleted: number;
  /** Of those, files an earlier, interrupted run had already superseded. */
  finished: number;
  /** Files left as they are with the reason, e.g. no offset range in the footer. */
  skipped: { key: string; reason: string }[];
}

interface Resolved {
  catalog: VersionedCatalog | undefined;
  graceMs: number;
  now: () => number;
  config: CompactionConfig;
  eligible: (file: LakeFileKey) => boolean;
  onProgress: (step: CompactStep) => void;
  signal: AbortSignal | undefined;
}

function resolve(options: CompactOptions): Resolved {
  const { onProgress, signal, eligible, catalog, graceMs, now, ...data } = options;
  if (graceMs !== undefined && (!Number.isInteger(graceMs) || graceMs < 0)) throw cloudErrors.create('CLD_INVALID_OPTIONS', '/graceMs must be a non-negative integer');
  if (onProgress !== undefined && typeof onProgress !== 'function') throw cloudErrors.create('CLD_INVALID_OPTIONS', '/onProgress must be a function');
  if (eligible !== undefined && typeof eligible !== 'function') throw cloudErrors.create('CLD_INVALID_OPTIONS', '/eligible must be a function');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw cloudErrors.create('CLD_INVALID_OPTIONS', '/signal must be an AbortSignal');
  return { catalog, graceMs: graceMs ?? DEFAULT_GRACE_MS, now: now ?? Date.now, config: compactionOptions.resolve(data), eligible: eligible ?? (() => true), onProgress: onProgress ?? (() => undefined), signal };
}

/** Compacts every partition of the given tables (all: curated, raw and dead letters, by default), one partition at a time. */
export async function compactLake(
  store: ObjectStore,
  options: CompactOptions & { tables?: readonly LakeTable[] } = {},
): Promise<PartitionCompaction[]> {
  const { tables, ...rest } = options;
  const resolved = resolve(rest);
  for (const t of tables ?? []) if (!isLakeTable(t)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `/tables: unknown table ${String(t)}`);
  const db = await openDuckDB();
  const files = localFiles(store);
  try {
    const results: PartitionCompaction[] = [];
    for (const table of tables ?? ALL_LAKE_TABLES) {
      if (resolved.catalog !== undefined) {
        for (const registered of await resolved.catalog.partitions(table)) {
          if (resolved.signal?.aborted) return results;
          const partition = { event_date: registered.values[0] as string, event_hour: Number(registered.values[1]) };
          results.push(await compactVersioned(db.connection, store, files, table, partition, registered, resolved));
        }
        continue;
      }
      // Partitions with something this run may touch: a partition of others' files is not even read.
      const partitions = new Map<string, LakePartition>();
      for (const key of await store.list(tablePrefix(table))) {
        const file = parseLakeFileKey(key);
        const partition = partitionOfKey(table, key);
        if (partition === undefined || !key.endsWith('.parquet') || (file !== undefined && !resolved.eligible(file))) continue;
        partitions.set(`${partition.event_date}/${partition.event_hour}`, partition);
      }
      for (const partition of partitions.values()) {
        if (resolved.signal?.aborted) return results;
        results.push(await compactWith(db.connection, store, files, table, partition, resolved));
      }
    }
    return results;
  } finally {
    db.close();
    await files.close();
  }
}

/** Compacts one lake partition: first finishes what an interrupted run left, then merges small files. */
export async function compactPartition(
  store: ObjectStore,
  table: LakeTable,
  partition: LakePartition,
  options: CompactOptions = {},
): Promise<PartitionCompaction> {
  if (!isLakeTable(table)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `unknown table ${String(table)}`);
  const resolved = resolve(options);
  const db = await openDuckDB();
  const files = localFiles(store);
  try {
    const registered = await resolved.catalog?.partition(table, [partition.event_date, String(partition.event_hour)]);
    if (registered !== undefined) return await compactVersioned(db.connection, store, files, table, partition, registered, resolved);
    return await compactWith(db.connection, store, files, table, partition, resolved);
  } finally {
    db.close();
    await files.close();
  }
}

async function openDuckDB(): Promise<{ connection: DuckDBConnection; close(): void }> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  await connection.run(`SET TimeZone = 'UTC'`);
  return {
    connection,
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

async function compactWith(
  db: DuckDBConnection,
  store: ObjectStore,
  files: LocalFiles,
  table: LakeTable,
  partition: LakePartition,
  options: Resolved,
): Promise<PartitionCompaction> {
  const { targetBytes, keepNewest } = options.config;
  const prefix = partitionPrefix(table, partition);
  const keys = (await store.list(prefix)).filter((k) => k.endsWith('.parquet') && !k.slice(prefix.length).includes('/'));
  const result: PartitionCompaction = { table, partition, filesBefore: keys.length, filesAfter: keys.length, merged: [], deleted: 0, finished: 0, skipped: [] };

  // Roll forward what a killed run left: superseded files whose merged file is already durable.
  const superseded = supersededFiles(keys);
  for (const [key, by] of superseded) {
    const file = parseLakeFileKey(key);
    if (file !== undefined && !options.eligible(file)) continue;
    if (options.signal?.aborted) return result;
    await deleteObject(store, key);
    result.deleted++;
    result.finished++;
    options.onProgress({ step: 'deleted', key, supersededBy: by });
  }

  const groups = new Map<string, LakeFileKey[]>();
  for (const key of keys) {
    if (superseded.has(key)) continue;
    const file = parseLakeFileKey(key);
    if (file === undefined) {
      result.skipped.push({ key, reason: 'not a data file name' });
      continue;
    }
    if (!options.eligible(file)) continue;
    const g = `${file.topic}\u0000${file.kafkaPartition}`;
    let list = groups.get(g);
    if (list === undefined) groups.set(g, (list = []));
    list.push(file);
  }

  for (const group of groups.values()) {
    group.sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
    const candidates = keepNewest ? group.slice(0, -1) : group;
    if (candidates.length < 2) continue;
    const sized: { file: LakeFileKey; bytes: number }[] = [];
    for (const file of candidates) sized.push({ file, bytes: (await stat(await files.path(file.key))).size });
    for (const run of runsUnder(sized, targetBytes)) {
      if (options.signal?.aborted) break;
      const merged = await mergeRun(db, store, files, table, run.map((s) => s.file), result);
      if (merged === undefined) continue;
      options.onProgress({ step: 'merged', key: merged.key, inputs: run.map((s) => s.file.key), rows: merged.rows, bytes: merged.bytes });
      result.merged.push({ key: merged.key, inputs: run.length, rows: merged.rows, bytes: merged.bytes });
      // Only now, with the merged file durable, may the inputs go.
      for (const { file } of run) {
        await deleteObject(store, file.key);
        result.deleted++;
        options.onProgress({ step: 'deleted', key: file.key, supersededBy: merged.key });
      }
    }
  }
  result.filesAfter = keys.length - result.deleted + result.merged.length;
  return result;
}

/**
 * Compaction by version, for partitions a catalog holds (what Athena, Spark and our views read):
 * 1. finish earlier runs: files the sink appended to a retired location are carried over to the current
 *    one; retired locations past the grace period are deleted (after the carry-over) and forgotten;
 * 2. merge the eligible files present now at the current location L into a fresh version location V,
 *    and copy every other file there too (V holds all of L's rows, each once);
 * 3. carry over what the sink added to L meanwhile; then, holding the partition (the sink's writer holds
 *    it from reading the location to its file being there), carry over the last appends and switch the
 *    partition to V in one catalog call.
 * Killed anywhere before the switch, readers see L (V is an orphan a later run deletes); after it, V,
 * complete. L stays readable for the grace period.
 */
async function compactVersioned(
  db: DuckDBConnection,
  store: ObjectStore,
  files: LocalFiles,
  table: LakeTable,
  partition: LakePartition,
  registered: CatalogPartition,
  options: Resolved,
): Promise<PartitionCompaction> {
  const catalog = options.catalog as VersionedCatalog;
  const { targetBytes, keepNewest } = options.config;
  const base = partitionPrefix(table, partition);
  const values = [partition.event_date, String(partition.event_hour)];
  const current = registered.location;
  const keys = await filesAt(store, current);
  const result: PartitionCompaction = { table, partition, filesBefore: keys.length, filesAfter: keys.length, merged: [], deleted: 0, finished: 0, skipped: [] };

  // 1. Retired locations: carry over, then delete those past the grace period.
  const retired = retiredOf(registered);
  if (retired.length > 0) {
    const keep: typeof retired = [];
    for (const r of retired) {
      for (const key of await carryOver(store, base, r.location, current)) options.onProgress({ step: 'carried', key, from: r.location });
      if (r.location === current || options.now() - r.at < options.graceMs) {
        keep.push(r);
        continue;
      }
      const old = await filesAt(store, r.location);
      for (const key of old) await deleteObject(store, key);
      result.deleted += old.length;
      result.finished += old.length;
      options.onProgress({ step: 'retired', location: r.location, files: old.length });
    }
    if (keep.length !== retired.length) {
      await catalog.replacePartitions(table, [{ ...registered, parameters: { ...(registered.parameters ?? {}), [PARAM.retired]: JSON.stringify(keep) } }]);
      registered = { ...registered, parameters: { ...(registered.parameters ?? {}), [PARAM.retired]: JSON.stringify(keep) } };
    }
  }
  if (options.signal?.aborted) return result;

  // 2. What to merge: runs of eligible files per topic-partition, named as if in the base folder.
  const present = await filesAt(store, current);
  const asBase = new Map<string, LakeFileKey>();
  for (const key of present) {
    const file = parseLakeFileKey(base + key.slice(current.length));
    if (file === undefined) result.skipped.push({ key, reason: 'not a data file name' });
    else asBase.set(key, { ...file, key, folder: current });
  }
  const groups = new Map<string, LakeFileKey[]>();
  for (const file of asBase.values()) {
    if (!options.eligible(file)) continue;
    const g = `${file.topic}\u0000${file.kafkaPartition}`;
    let list = groups.get(g);
    if (list === undefined) groups.set(g, (list = []));
    list.push(file);
  }
  const runs: LakeFileKey[][] = [];
  for (const group of groups.values()) {
    group.sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
    const candidates = keepNewest ? group.slice(0, -1) : group;
    if (candidates.length < 2) continue;
    const sized: { file: LakeFileKey; bytes: number }[] = [];
    for (const file of candidates) sized.push({ file, bytes: (await stat(await files.path(file.key))).size });
    for (const run of runsUnder(sized, targetBytes)) runs.push(run.map((s) => s.file));
  }
  if (runs.length === 0) return result;

  const build = newBuildId(options.now());
  const next = versionLocation(tablePrefix(table), partition, build);
  const merged = new Set<string>();
  for (const run of runs) {
    if (options.signal?.aborted) return result;
    const out = await mergeRun(db, store, files, table, run, result, next);
    if (out === undefined) continue;
    for (const f of run) merged.add(f.key);
    options.onProgress({ step: 'merged', key: out.key, inputs: run.map((f) => f.key), rows: out.rows, bytes: out.bytes });
    result.merged.push({ key: out.key, inputs: run.length, rows: out.rows, bytes: out.bytes });
  }
  if (merged.size === 0) return result;
  // Everything else at the current location goes along unchanged (names kept: the sink may rewrite them).
  for (const key of present) {
    if (merged.has(key)) continue;
    const to = next + key.slice(current.length);
    await copyObject(store, key, to);
    options.onProgress({ step: 'carried', key: to, from: current });
  }
  // 3. Appended meanwhile → copy; then, with the partition held so no writer can append to the current
  // location, copy the last appends and switch. After the release, a last carry-over for writers the
  // lock does not reach (Glue's lock holds only within one process).
  for (const key of await carryOver(store, base, current, next)) options.onProgress({ step: 'carried', key, from: current });
  if (options.signal?.aborted) return result;
  const release = await catalog.lockPartition(table, values);
  try {
    // Another run switched it meanwhile: this version is an orphan a later run deletes.
    const latest = await catalog.partition(table, values);
    if (latest?.location !== current) {
      result.skipped.push({ key: current, reason: `switched meanwhile to ${latest?.location ?? 'nothing'}` });
      result.merged = [];
      return result;
    }
    for (const key of await carryOver(store, base, current, next)) options.onProgress({ step: 'carried', key, from: current });
    await catalog.replacePartitions(table, [{ values, location: next, parameters: switchedParameters(latest, options.now(), { ...(latest.parameters ?? {}) }) }]);
  } finally {
    await release();
  }
  options.onProgress({ step: 'switched', location: next, from: current });
  for (const key of await carryOver(store, base, current, next)) options.onProgress({ step: 'carried', key, from: current });
  result.filesAfter = (await filesAt(store, next)).length;
  return result;
}

/** Consecutive files grouped while the sum stays ≤ target; only groups of two or more are worth a merge. */
function runsUnder<T extends { bytes: number }>(files: readonly T[], targetBytes: number): T[][] {
  const runs: T[][] = [];
  let current: T[] = [];
  let total = 0;
  for (const f of files) {
    if (current.length > 0 && total + f.bytes > targetBytes) {
      if (current.length > 1) runs.push(current);
      current = [];
      total = 0;
    }
    current.push(f);
    total += f.bytes;
  }
  if (current.length > 1) runs.push(current);
  return runs;
}

async function mergeRun(
  db: DuckDBConnection,
  store: ObjectStore,
  files: LocalFiles,
  table: LakeTable,
  run: readonly LakeFileKey[],
  result: PartitionCompaction,
  outFolder?: string,
): Promise<{ key: string; rows: number; bytes: number } | undefined> {
  const paths = await Promise.all(run.map((f) => files.path(f.key)));
  const list = `[${paths.map(quotedString).join(', ')}]`;
  let expectedRows = 0;
  let lastOffset = -1n;
  try {
    const meta = (await db.runAndReadAll(`SELECT num_rows FROM parquet_file_metadata(${list})`)).getRowObjects();
    for (const row of meta) expectedRows += Number(row.num_rows);
    const last = run[run.length - 1] as LakeFileKey;
    lastOffset = last.lastOffset ?? (await footerLastOffset(db, await files.path(last.key))) ?? -1n;
  } catch (err) {
    throw cloudErrors.create('CLD_LAKE_READ', `reading ${run.length} files of ${run[0]?.folder}: ${errorMessage(err)}`, err);
  }
  const first = run[0] as LakeFileKey;
  if (lastOffset < first.firstOffset) {
    for (const f of run) result.skipped.push({ key: f.key, reason: `no ${FOOTER_LAST_OFFSET} in the footer` });
    return undefined;
  }
  const key = (outFolder ?? first.folder) + mergedFileName(first.topic, first.kafkaPartition, first.firstOffset, lastOffset);
  const scratch = await store.scratchPath(key);
  const schema = tableSchema(table);
  const source = `read_parquet(${list}, union_by_name = true, hive_partitioning = false)`;
  try {
    const present = new Set((await db.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjects().map((r) => String(r.column_name)));
    // The current schema's columns in order; a column older files lack reads as NULL.
    const select = schema.columns
      .map((c) => (present.has(c.name) ? quotedIdentifier(c.name) : `CAST(NULL AS ${SQL_TYPES[c.type]})`) + ` AS ${quotedIdentifier(c.name)}`)
      .join(', ');
    const kv = footerMetadata(
      { topic: first.topic, kafkaPartition: first.kafkaPartition, firstOffset: first.firstOffset, lastOffset },
      { 'city.compacted_from': String(run.length) },
    );
    const kvSql = Object.entries(kv).map(([k, v]) => `${quotedIdentifier(k)}: ${quotedString(v)}`).join(', ');
    await db.run(`COPY (SELECT ${select} FROM ${source}) TO ${quotedString(scratch)} (FORMAT parquet, ${parquetCodecOptions(table)}, KV_METADATA {${kvSql}})`);
    const written = Number((await db.runAndReadAll(`SELECT num_rows FROM parquet_file_metadata(${quotedString(scratch)})`)).getRows()[0]?.[0] ?? -1);
    if (written !== expectedRows) throw new Error(`merged file holds ${written} rows, its inputs ${expectedRows}`);
  } catch (err) {
    await store.discard(scratch).catch(() => undefined);
    throw cloudErrors.create('CLD_PARQUET_WRITE', `${key}: ${errorMessage(err)}`, err);
  }
  const bytes = (await stat(scratch)).size;
  try {
    await store.put(key, scratch);
  } catch (err) {
    await store.discard(scratch).catch(() => undefined);
    throw err;
  }
  return { key, rows: expectedRows, bytes };
}

async function footerLastOffset(db: DuckDBConnection, path: string): Promise<bigint | undefined> {
  const rows = (
    await db.runAndReadAll(`SELECT decode(value) AS v FROM parquet_kv_metadata(${quotedString(path)}) WHERE decode(key) = ${quotedString(FOOTER_LAST_OFFSET)}`)
  ).getRows();
  const value = rows[0]?.[0];
  return typeof value === 'string' && /^\d+$/.test(value) ? BigInt(value) : undefined;
}

interface LocalFiles {
  /** A local file with the object's bytes. */
  path(key: string): Promise<string>;
  close(): Promise<void>;
}

/** Compaction reads objects as local files: directly for a folder store, else through download() into a temporary folder. */
function localFiles(store: ObjectStore): LocalFiles {
  if (isLocalStore(store)) return { path: async (key) => store.locate(key), close: async () => undefined };
  let dir: Promise<string> | undefined;
  const cached = new Map<string, Promise<string>>();
  return {
    path(key) {
      let p = cached.get(key);
      if (p === undefined) {
        p = (async () => {
          if (typeof store.download !== 'function') throw cloudErrors.create('CLD_INVALID_OPTIONS', `store ${store.root} offers no download(); compaction cannot read it`);
          dir ??= mkdtemp(join(tmpdir(), 'city-compact-'));
          const path = join(await dir, `${cached.size}.parquet`);
          await store.download(key, path);
          return path;
        })();
        cached.set(key, p);
      }
      return p;
    },
    async close() {
      if (dir !== undefined) await rm(await dir, { recursive: true, force: true });
    },
  };
}

async function deleteObject(store: ObjectStore, key: string): Promise<void> {
  try {
    if (typeof store.delete === 'function') return await store.delete(key);
    if (!isLocalStore(store)) throw new Error(`store ${store.root} cannot delete`);
    // No fsync: a deletion lost to a power cut brings back a superseded file, which readers skip.
    await rm(store.locate(key), { force: true });
  } catch (err) {
    throw cloudErrors.create('CLD_STORE_DELETE', `${key}: ${errorMessage(err)}`, err);
  }
}
