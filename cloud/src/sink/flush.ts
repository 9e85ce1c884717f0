// Flush → catalog → commit. Offsets are committed only after every file holding their rows is durable
// and catalogued, so a crash anywhere re-consumes records instead of losing them. Flushes run one at a
// time; write, catalog and commit failures are retried with backoff until they succeed or the sink stops.
//
// Residual risk: a sink that lost its partitions and writes a non-reproducible segment after the new owner
// replaced it (both cut differently) can overwrite the newer file; the assignment is checked right before
// every write to keep that window small. Reproducible segments are identical whoever writes them.
import { CityError, isEventKind, sleep, type Log } from '@city/protocol';
import { cloudErrors, errorMessage, type CloudErrorCode } from '../errors.ts';
import { partitionPrefix, rawKind, tablePrefix, tableSchema, type LakePartition, type LakeTable, type LakeWriter, type ParquetRows } from '../lake/index.ts';
import type { CatalogPort } from '../ports/catalog/index.ts';
import type { CommittedOffset, FlushErrorInfo, FlushInfo, SinkStats } from './events.ts';
import type { Intake, Ownership } from './intake.ts';
import { packedEventRows } from './records.ts';
import { fileRows, tpKey, type FlushReason, type SegmentFile, type Segments } from './segments.ts';

export interface FlusherDeps {
  segments: Segments;
  intake: Intake;
  ownership: Ownership;
  stats: SinkStats;
  lake: () => LakeWriter | undefined;
  catalog: CatalogPort | undefined;
  commit(offsets: readonly CommittedOffset[]): Promise<void>;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Aborted when the sink stops working (close deadline, or a fault that forbids further commits). */
  signal: AbortSignal;
  flushed(info: FlushInfo): void;
  failed(info: FlushErrorInfo): void;
  /** A flush failed in a way retries cannot mend: no later commit may pass its rows. */
  broken(error: CityError): void;
  log: Log;
}

export class Flusher {
  readonly #deps: FlusherDeps;
  #loop: Promise<void> | undefined;
  #pending: FlushReason | undefined;
  /** Tables and partitions registered in the catalog, so each is registered once. */
  readonly #catalogued = new Set<string>();

  constructor(deps: FlusherDeps) {
    this.#deps = deps;
  }

  /** Flushes run one at a time; a request during a flush runs one more round after it. */
  request(reason: FlushReason): Promise<void> {
    if (this.#loop !== undefined) {
      this.#pending ??= reason;
      return this.#loop;
    }
    const loop = (async () => {
      let next: FlushReason | undefined = reason;
      while (next !== undefined && !this.#deps.signal.aborted) {
        this.#pending = undefined;
        try {
          await this.#flushOnce(next);
        } catch (err) {
          // Only a bug gets here (write and commit errors are retried). Rows taken for this flush may not
          // be written, so no later commit may pass them: stop; Kafka keeps the records.
          this.#deps.broken(cloudErrors.create('CLD_FLUSH_BUG', errorMessage(err), err));
        }
        next = this.#pending ?? (this.#deps.segments.hasEnded ? reason : undefined);
      }
    })().finally(() => {
      this.#loop = undefined;
    });
    this.#loop = loop;
    return loop;
  }

  async #flushOnce(reason: FlushReason): Promise<void> {
    const { segments, ownership, stats, signal } = this.#deps;
    const lake = this.#deps.lake();
    const taken = segments.takeEnded();
    if (taken.length === 0 || lake === undefined) return;
    const started = performance.now();
    const skipped = new Set<string>();
    const written: SegmentFile[] = [];
    const byKind: Partial<Record<LakeTable, number>> = {};
    let files = 0;
    let rows = 0;
    let rejected = 0;
    let duplicates = 0;

    for (const segment of taken) {
      const committed = ownership.committed.get(segment.tp);
      // Buffered before a commit that passed it (rejoin during a flush): its cut may differ, read again.
      if (committed !== undefined && segment.firstOffset < committed) {
        skipped.add(segment.tp);
        continue;
      }
      for (const file of segment.files.values()) {
        duplicates += file.duplicates;
        const count = fileRows(file);
        if (count === 0) continue;
        const fileContent = contentOf(file);
        for (let attempt = 1; ; attempt++) {
          if (signal.aborted) return;
          // A revoked partition is re-read by its new owner; writing it here would only race that owner.
          if (!ownership.assigned.has(segment.tp)) {
            skipped.add(segment.tp);
            break;
          }
          try {
            await lake.write({
              table: file.table,
              partition: file.partition,
              topic: segment.topic,
              kafkaPartition: segment.partition,
              firstOffset: file.firstOffset,
              lastOffset: file.lastOffset,
              rows: fileContent,
            });
            // Written: its chunks serve the next files (nothing reads a written file's rows again).
            file.packed?.release();
            files++;
            rows += count;
            rejected += file.rejected;
            byKind[file.table] = (byKind[file.table] ?? 0) + count;
            written.push(file);
            break;
          } catch (err) {
            stats.writeErrors++;
            await this.#backoff('write', 'CLD_PARQUET_WRITE', err, attempt);
          }
        }
        if (skipped.has(segment.tp)) break;
      }
    }

    await this.#catalogue(written);

    const ends = new Map<string, CommittedOffset>();
    for (const segment of taken) {
      if (skipped.has(segment.tp)) continue;
      ends.set(segment.tp, { topic: segment.topic, partition: segment.partition, offset: (segment.lastOffset + 1n).toString() });
    }
    let committed: CommittedOffset[] = [];
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return;
      committed = [...ends]
        .filter(([tp, end]) => ownership.assigned.has(tp) && BigInt(end.offset) > (ownership.committed.get(tp) ?? -1n))
        .map(([, end]) => end);
      if (committed.length === 0) break;
      try {
        await this.#deps.commit(committed);
        for (const c of committed) {
          const tp = tpKey(c.topic, c.partition);
          const offset = BigInt(c.offset);
          ownership.committed.set(tp, offset);
          if (segments.holdsBefore(tp, offset)) this.#deps.intake.rewind(c.topic, c.partition, offset);
        }
        break;
      } catch (err) {
        stats.commitErrors++;
        await this.#backoff('commit', 'CLD_COMMIT', err, attempt);
      }
    }

    stats.flushes++;
    stats.files += files;
    for (const [table, n] of Object.entries(byKind) as [LakeTable, number][]) stats.rows[table] = (stats.rows[table] ?? 0) + n;
    const info: FlushInfo = {
      reason,
      files,
      rows,
      byKind,
      rejected,
      duplicates,
      segments: taken.filter((s) => !skipped.has(s.tp)).length,
      committed,
      durationMs: Math.round(performance.now() - started),
    };
    this.#deps.log('info', 'flushed', { ...info, committed: committed.length });
    if (duplicates > 0) this.#deps.log('info', 'duplicate events dropped', { duplicates, total: stats.duplicates });
    this.#deps.flushed(info);
  }

  /** Registers the tables and partitions of written files, once each, before their offsets are committed. */
  async #catalogue(written: readonly SegmentFile[]): Promise<void> {
    const catalog = this.#deps.catalog;
    if (catalog === undefined || written.length === 0) return;
    const tables = new Map<LakeTable, Map<string, LakePartition>>();
    for (const file of written) {
      const id = `${file.table}/${file.partition.event_date}/${file.partition.event_hour}`;
      if (this.#catalogued.has(id)) continue;
      let parts = tables.get(file.table);
      if (parts === undefined) {
        parts = new Map();
        tables.set(file.table, parts);
      }
      parts.set(id, file.partition);
    }
    for (const [table, parts] of tables) {
      for (let attempt = 1; ; attempt++) {
        if (this.#deps.signal.aborted) return;
        try {
          await this.#register(catalog, table, [...parts.values()]);
          for (const id of parts.keys()) this.#catalogued.add(id);
          break;
        } catch (err) {
          this.#deps.stats.catalogErrors++;
          await this.#backoff('catalog', 'CLD_CATALOG', err, attempt);
        }
      }
    }
  }

  async #register(catalog: CatalogPort, table: LakeTable, partitions: LakePartition[]): Promise<void> {
    const schema = tableSchema(table);
    const tableId = `table:${table}`;
    // Catalog table names are the lake's: the event kind for curated tables, raw_<kind>, deadletter.
    if (!this.#catalogued.has(tableId)) {
      await catalog.ensureTable({ name: table, columns: schema.columns, partitionKeys: schema.partitionKeys, location: tablePrefix(table) });
      this.#catalogued.add(tableId);
    }
    await catalog.addPartitions(
      table,
      partitions.map((p) => ({ values: [p.event_date, String(p.event_hour)], location: partitionPrefix(table, p) })),
    );
  }

  async #backoff(stage: FlushErrorInfo['stage'], code: CloudErrorCode, err: unknown, attempt: number): Promise<void> {
    const { retryInitialMs, retryMaxMs } = this.#deps;
    const error = err instanceof CityError ? err : cloudErrors.create(code, errorMessage(err), err);
    const base = Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(attempt - 1, 30));
    const retryInMs = Math.round(base * (0.8 + Math.random() * 0.4));
    this.#deps.log('error', `${stage} failed, retrying`, { error, attempt, retryInMs });
    this.#deps.failed({ error, stage, attempt, retryInMs });
    await sleep(retryInMs, { signal: this.#deps.signal });
  }
}

/** What the lake writer gets for a file: its cells, or its packed rows (raw rows, or event texts for DuckDB to read). */
function contentOf(file: SegmentFile): ParquetRows {
  const packed = file.packed;
  if (packed === undefined || packed.rows === 0) return file.rows;
  if (file.rows.length > 0) throw new Error(`file of ${file.table} holds both cells and packed rows`);
  if (rawKind(file.table) !== undefined) return { packed };
  if (!isEventKind(file.table)) throw new Error(`file of ${file.table} holds event texts`);
  return packedEventRows(file.table, packed);
}
