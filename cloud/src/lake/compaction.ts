// Lake compaction: merges the small files of one Kafka topic-partition inside one lake partition into
// files of about a target size, without a reader ever seeing a row twice or not at all.
//
// Why a reader never sees a duplicate or a gap (readers must list keys and pass them through liveFiles()):
// - A merged file is named after the Kafka offset range its inputs cover: <topic>+<p>+<first>+<last>.parquet.
//   liveFiles() hides every input file (<topic>+<p>+<first>.parquet) whose first offset lies in the range
//   of a merged file of the same topic-partition in the same folder, and every merged file inside a wider one.
// - Step 1 writes the merged file to a scratch path and put()s it: atomic and durable. Killed before that,
//   the lake holds only the inputs (scratch files are never listed): the old view, exact.
// - From the moment the merged file exists, its inputs are hidden, all at once, by its name alone: the
//   new view, exact, because it holds exactly the inputs' rows (checked by row count before the put).
// - Step 2 deletes the inputs. Killed midway, the survivors stay hidden; the next run on the partition
//   deletes them first (roll forward). A deletion lost to a power cut only brings back a hidden file.
// - The sink may still rewrite the files of its last, uncommitted flush after a crash (same name, maybe
//   more rows). Those are the newest file of each topic-partition in a partition, so compaction leaves the
//   newest one alone unless told the partition is sealed (keepNewest: false).
// - One compactor per lake at a time: two racing on one partition could write overlapping ranges.
// A reader that listed keys just before step 2 may find an input gone and must list again (an error,
// never a wrong answer).
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, quotedIdentifier, quotedString, type DuckDBConnection } from '@duckdb/node-api';
import { compileSchema, describeProblems, EVENT_KINDS, SCHEMA_VERSION } from '@city/protocol';
import { cloudErrors, errorMessage } from './errors.ts';
import { isLakeTable, parseDataFileKey, partitionPrefix, rawTable, tablePrefix, tableSchema, type LakePartition, type LakeTable } from './layout.ts';
import { SQL_TYPES } from './parquet.ts';
import type { ObjectStore } from './store.ts';

/**
 * Compaction reads objects as local files: directly for a folder store, else through download() into a
 * temporary folder. It deletes with delete(), or removes the file of a folder store.
 */
export type CompactionStore = ObjectStore;

export interface CompactOptions {
  /** Merge consecutive files while their total stays at or under this many bytes. */
  targetBytes?: number;
  /** Leave the newest file of each topic-partition alone (the sink may still rewrite it). */
  keepNewest?: boolean;
  /** Called after each durable step; a progress log for the CLI and the crash tests. */
  onProgress?: (step: CompactStep) => void;
  /** Stops between steps; the lake stays consistent and the next run carries on. */
  signal?: AbortSignal;
}

export type CompactStep =
  | { step: 'merged'; key: string; inputs: string[]; rows: number; bytes: number }
  | { step: 'deleted'; key: string; supersededBy: string };

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

export const COMPACT_DEFAULTS = { targetBytes: 128 * 1024 * 1024, keepNewest: true } as const;

const validateOptions = compileSchema<{ targetBytes: number; keepNewest: boolean }>({
  type: 'object',
  additionalProperties: false,
  properties: {
    targetBytes: { type: 'integer', minimum: 1, maximum: 64 * 1024 ** 3 },
    keepNewest: { type: 'boolean' },
  },
});

function resolveOptions(options: CompactOptions): { targetBytes: number; keepNewest: boolean } {
  const { onProgress, signal, ...data } = options;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw cloudErrors.create('CLD_INVALID_OPTIONS', '/onProgress must be a function');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw cloudErrors.create('CLD_INVALID_OPTIONS', '/signal must be an AbortSignal');
  const merged: Record<string, unknown> = { ...COMPACT_DEFAULTS };
  for (const [key, value] of Object.entries(data)) if (value !== undefined) merged[key] = value;
  const checked = validateOptions(merged);
  if (!checked.ok) throw cloudErrors.create('CLD_INVALID_OPTIONS', describeProblems(checked.problems));
  return checked.value;
}

/** Kafka offsets are int64: 19 digits keep lexical order equal to numeric order. */
const OFFSET_DIGITS = 19;

export function mergedFileName(topic: string, kafkaPartition: number, firstOffset: bigint, lastOffset: bigint): string {
  if (!/^[A-Za-z0-9._-]+$/.test(topic)) throw new RangeError(`topic name not usable in a file name: ${topic}`);
  if (!Number.isInteger(kafkaPartition) || kafkaPartition < 0) throw new RangeError(`bad partition ${kafkaPartition}`);
  if (firstOffset < 0n || lastOffset < firstOffset) throw new RangeError(`bad offset range ${firstOffset}..${lastOffset}`);
  const pad = (o: bigint) => o.toString().padStart(OFFSET_DIGITS, '0');
  return `${topic}+${kafkaPartition}+${pad(firstOffset)}+${pad(lastOffset)}.parquet`;
}

/** A lake data file as compaction and liveFiles see it: one Kafka offset range of one topic-partition. */
export interface RangeFile {
  key: string;
  /** Folder of the file (its lake partition), ending in '/'. */
  folder: string;
  topic: string;
  kafkaPartition: number;
  firstOffset: bigint;
  /** Known from the name for merged files only. */
  lastOffset: bigint | undefined;
  merged: boolean;
}

export function parseRangeFile(key: string): RangeFile | undefined {
  const slash = key.lastIndexOf('/');
  const folder = key.slice(0, slash + 1);
  const name = key.slice(slash + 1);
  const m = /^([A-Za-z0-9._-]+)\+(\d+)\+(\d+)\+(\d+)\.parquet$/.exec(name);
  if (m) {
    return {
      key,
      folder,
      topic: m[1] as string,
      kafkaPartition: Number(m[2]),
      firstOffset: BigInt(m[3] as string),
      lastOffset: BigInt(m[4] as string),
      merged: true,
    };
  }
  const plain = parseDataFileKey(key);
  if (plain === undefined) return undefined;
  return { key, folder, topic: plain.topic, kafkaPartition: plain.kafkaPartition, firstOffset: plain.firstOffset, lastOffset: undefined, merged: false };
}

/**
 * The keys a reader should read: drops files superseded by a merged file (see the argument at the top).
 * Keys it does not recognise pass through unchanged; order is kept.
 */
export function liveFiles(keys: readonly string[]): string[] {
  const superseded = supersededFiles(keys);
  return keys.filter((key) => !superseded.has(key));
}

/** Superseded key → the merged key that covers it. */
function supersededFiles(keys: readonly string[]): Map<string, string> {
  const mergedByGroup = new Map<string, RangeFile[]>();
  const files: RangeFile[] = [];
  for (const key of keys) {
    const file = parseRangeFile(key);
    if (file === undefined) continue;
    files.push(file);
    if (file.merged) {
      const group = groupKey(file);
      let list = mergedByGroup.get(group);
      if (list === undefined) mergedByGroup.set(group, (list = []));
      list.push(file);
    }
  }
  const out = new Map<string, string>();
  for (const file of files) {
    for (const m of mergedByGroup.get(groupKey(file)) ?? []) {
      if (m.key === file.key) continue;
      const last = m.lastOffset as bigint;
      const covered = file.merged
        ? m.firstOffset <= file.firstOffset && (file.lastOffset as bigint) <= last
        : m.firstOffset <= file.firstOffset && file.firstOffset <= last;
      if (covered) {
        out.set(file.key, m.key);
        break;
      }
    }
  }
  return out;
}

const groupKey = (f: RangeFile): string => `${f.folder}\u0000${f.topic}\u0000${f.kafkaPartition}`;

/** Compacts every partition of the given tables (all: curated, raw and dead letters, by default), one partition at a time. */
export async function compactLake(
  store: CompactionStore,
  options: CompactOptions & { tables?: readonly LakeTable[] } = {},
): Promise<PartitionCompaction[]> {
  const { tables, ...rest } = options;
  resolveOptions(rest);
  for (const t of tables ?? []) if (!isLakeTable(t)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `/tables: unknown table ${String(t)}`);
  const all: readonly LakeTable[] = tables ?? [...EVENT_KINDS, ...EVENT_KINDS.map(rawTable), 'deadletter'];
  const db = await openDuckDB();
  const files = localFiles(store);
  try {
    const results: PartitionCompaction[] = [];
    for (const table of all) {
      const partitions = new Map<string, LakePartition>();
      for (const key of await store.list(tablePrefix(table))) {
        const m = /event_date=(\d{4}-\d{2}-\d{2})\/event_hour=(\d{1,2})\/[^/]+\.parquet$/.exec(key);
        if (m) partitions.set(`${m[1]}/${m[2]}`, { event_date: m[1] as string, event_hour: Number(m[2]) });
      }
      for (const partition of partitions.values()) {
        if (rest.signal?.aborted) return results;
        results.push(await compactWith(db.connection, store, files, table, partition, rest));
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
  store: CompactionStore,
  table: LakeTable,
  partition: LakePartition,
  options: CompactOptions = {},
): Promise<PartitionCompaction> {
  if (!isLakeTable(table)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `unknown table ${String(table)}`);
  resolveOptions(options);
  const db = await openDuckDB();
  const files = localFiles(store);
  try {
    return await compactWith(db.connection, store, files, table, partition, options);
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
  store: CompactionStore,
  files: LocalFiles,
  table: LakeTable,
  partition: LakePartition,
  options: CompactOptions,
): Promise<PartitionCompaction> {
  const { targetBytes, keepNewest } = resolveOptions(options);
  const prefix = partitionPrefix(table, partition);
  const keys = (await store.list(prefix)).filter((k) => k.endsWith('.parquet') && !k.slice(prefix.length).includes('/'));
  const result: PartitionCompaction = { table, partition, filesBefore: keys.length, filesAfter: keys.length, merged: [], deleted: 0, finished: 0, skipped: [] };

  // Roll forward what a killed run left: superseded files whose merged file is already durable.
  const superseded = supersededFiles(keys);
  for (const [key, by] of superseded) {
    if (options.signal?.aborted) return result;
    await deleteObject(store, key);
    result.deleted++;
    result.finished++;
    options.onProgress?.({ step: 'deleted', key, supersededBy: by });
  }

  const groups = new Map<string, RangeFile[]>();
  for (const key of keys) {
    if (superseded.has(key)) continue;
    const file = parseRangeFile(key);
    if (file === undefined) {
      result.skipped.push({ key, reason: 'not a data file name' });
      continue;
    }
    const g = groupKey(file);
    let list = groups.get(g);
    if (list === undefined) groups.set(g, (list = []));
    list.push(file);
  }

  for (const group of groups.values()) {
    group.sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
    const candidates = keepNewest ? group.slice(0, -1) : group;
    if (candidates.length < 2) continue;
    const sized: { file: RangeFile; bytes: number }[] = [];
    for (const file of candidates) sized.push({ file, bytes: (await stat(await files.path(file.key))).size });
    for (const run of runsUnder(sized, targetBytes)) {
      if (options.signal?.aborted) break;
      const merged = await mergeRun(db, store, files, table, run.map((s) => s.file), result);
      if (merged === undefined) continue;
      options.onProgress?.({ step: 'merged', key: merged.key, inputs: run.map((s) => s.file.key), rows: merged.rows, bytes: merged.bytes });
      result.merged.push({ key: merged.key, inputs: run.length, rows: merged.rows, bytes: merged.bytes });
      // Only now, with the merged file durable, may the inputs go.
      for (const { file } of run) {
        await deleteObject(store, file.key);
        result.deleted++;
        options.onProgress?.({ step: 'deleted', key: file.key, supersededBy: merged.key });
      }
    }
  }
  result.filesAfter = keys.length - result.deleted + result.merged.length;
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
  store: CompactionStore,
  files: LocalFiles,
  table: LakeTable,
  run: readonly RangeFile[],
  result: PartitionCompaction,
): Promise<{ key: string; rows: number; bytes: number } | undefined> {
  const paths = await Promise.all(run.map((f) => files.path(f.key)));
  const list = `[${paths.map(quotedString).join(', ')}]`;
  let expectedRows = 0;
  let lastOffset = -1n;
  try {
    const meta = (await db.runAndReadAll(`SELECT num_rows FROM parquet_file_metadata(${list})`)).getRowObjects();
    for (const row of meta) expectedRows += Number(row.num_rows);
    const last = run[run.length - 1] as RangeFile;
    lastOffset = last.lastOffset ?? (await footerLastOffset(db, await files.path(last.key))) ?? -1n;
  } catch (err) {
    throw cloudErrors.create('CLD_LAKE_OPEN', `reading ${run.length} files of ${run[0]?.folder}: ${errorMessage(err)}`, err);
  }
  const first = run[0] as RangeFile;
  if (lastOffset < first.firstOffset) {
    for (const f of run) result.skipped.push({ key: f.key, reason: 'no city.kafka.last_offset in the footer' });
    return undefined;
  }
  const key = first.folder + mergedFileName(first.topic, first.kafkaPartition, first.firstOffset, lastOffset);
  const scratch = await store.scratchPath(key);
  const schema = tableSchema(table);
  const source = `read_parquet(${list}, union_by_name = true, hive_partitioning = false)`;
  try {
    const present = new Set((await db.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjects().map((r) => String(r.column_name)));
    // The current schema's columns in order; a column older files lack reads as NULL.
    const select = schema.columns
      .map((c) => (present.has(c.name) ? quotedIdentifier(c.name) : `CAST(NULL AS ${SQL_TYPES[c.type]})`) + ` AS ${quotedIdentifier(c.name)}`)
      .join(', ');
    const kv = {
      'city.schema_version': String(SCHEMA_VERSION),
      'city.kafka.topic': first.topic,
      'city.kafka.partition': String(first.kafkaPartition),
      'city.kafka.first_offset': first.firstOffset.toString(),
      'city.kafka.last_offset': lastOffset.toString(),
      'city.compacted_from': String(run.length),
    };
    const kvSql = Object.entries(kv).map(([k, v]) => `${quotedIdentifier(k)}: ${quotedString(v)}`).join(', ');
    await db.run(`COPY (SELECT ${select} FROM ${source}) TO ${quotedString(scratch)} (FORMAT parquet, COMPRESSION snappy, KV_METADATA {${kvSql}})`);
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
    await db.runAndReadAll(`SELECT decode(value) AS v FROM parquet_kv_metadata(${quotedString(path)}) WHERE decode(key) = 'city.kafka.last_offset'`)
  ).getRows();
  const value = rows[0]?.[0];
  return typeof value === 'string' && /^\d+$/.test(value) ? BigInt(value) : undefined;
}

function isLocal(store: ObjectStore): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(store.root);
}

interface LocalFiles {
  /** A local file with the object's bytes. */
  path(key: string): Promise<string>;
  close(): Promise<void>;
}

function localFiles(store: ObjectStore): LocalFiles {
  if (isLocal(store)) return { path: async (key) => store.locate(key), close: async () => undefined };
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

async function deleteObject(store: CompactionStore, key: string): Promise<void> {
  try {
    if (typeof store.delete === 'function') return await store.delete(key);
    if (!isLocal(store)) throw new Error(`store ${store.root} cannot delete`);
    // No fsync: a deletion lost to a power cut brings back a superseded file, which readers skip.
    await rm(store.locate(key), { force: true });
  } catch (err) {
    throw cloudErrors.create('CLD_STORE_PUT', `deleting ${key}: ${errorMessage(err)}`, err);
  }
}
