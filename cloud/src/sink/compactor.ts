// The sink compacts its own files on a schedule, beside the write path (its own DuckDB, its own loop).
// It touches only files that are final: files of Kafka topic-partitions this sink owns whose offsets it
// has already committed. A file below the committed offset is never rewritten (a replay starts at the
// commit), so the newest, uncommitted files are left alone, and another instance's partitions are left
// to it. After a rebalance a topic-partition waits one round before it is compacted again, so a previous
// owner's merge still under way (it stops at the rebalance) cannot overlap a new one.
// Readers stay exact throughout (see lake/compaction.ts); a failed round is logged and the next one
// finishes what it left.
import { CityError, type Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import { compactLake, type LakeFileKey } from '../lake/index.ts';
import type { VersionedCatalog } from '../ports/catalog/index.ts';
import type { ObjectStore } from '../ports/store/index.ts';
import type { CompactionInfo, SinkStats } from './events.ts';
import type { Ownership } from './intake.ts';
import { tpKey } from './segments.ts';

export interface CompactorDeps {
  /** Milliseconds between rounds; 0 turns compaction off. */
  everyMs: number;
  targetBytes: number;
  store: () => ObjectStore | undefined;
  /** Compacts by version through this catalog (see lake/compaction.ts), in place without one. */
  catalog?: VersionedCatalog | undefined;
  ownership: Ownership;
  stats: SinkStats;
  compacted(info: CompactionInfo): void;
  failed(error: CityError): void;
  log: Log;
}

export class Compactor {
  readonly #deps: CompactorDeps;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #abort = new AbortController();
  #stopped = false;
  /** Group generation seen by the previous round: partitions are compacted only if it did not change since. */
  #generation: number | undefined;

  constructor(deps: CompactorDeps) {
    this.#deps = deps;
  }

  start(): void {
    if (this.#deps.everyMs > 0) this.#schedule();
  }

  /** The assignment moved: the round under way stops after its current step. */
  rebalanced(): void {
    this.#abort.abort();
  }

  /** Stops the schedule and waits for the round under way to reach a consistent point. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#round;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#round = this.#run().finally(() => {
        this.#round = undefined;
        if (!this.#stopped) this.#schedule();
      });
    }, this.#deps.everyMs);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const { ownership, stats } = this.#deps;
    const store = this.#deps.store();
    const generation = ownership.generation;
    const held = this.#generation === generation;
    this.#generation = generation;
    if (!held || store === undefined) return;
    // Final files only: below what this sink committed, per topic-partition it still owns.
    const finalBelow = new Map<string, bigint>();
    for (const tp of ownership.assigned) {
      const committed = ownership.committed.get(tp);
      if (committed !== undefined) finalBelow.set(tp, committed);
    }
    if (finalBelow.size === 0) return;
    const eligible = (file: LakeFileKey): boolean => {
      const committed = finalBelow.get(tpKey(file.topic, file.kafkaPartition));
      return committed !== undefined && (file.lastOffset ?? file.firstOffset) < committed;
    };
    this.#abort = new AbortController();
    if (this.#stopped) return;
    const started = performance.now();
    try {
      const results = await compactLake(store, { targetBytes: this.#deps.targetBytes, keepNewest: false, eligible, signal: this.#abort.signal, ...(this.#deps.catalog === undefined ? {} : { catalog: this.#deps.catalog }) });
      const info: CompactionInfo = {
        partitions: results.length,
        merged: results.reduce((n, r) => n + r.merged.length, 0),
        deleted: results.reduce((n, r) => n + r.deleted, 0),
        durationMs: Math.round(performance.now() - started),
      };
      stats.compactions++;
      stats.compactedFiles += info.merged;
      stats.compactedInputs += info.deleted;
      this.#deps.log(info.merged > 0 || info.deleted > 0 ? 'info' : 'debug', 'compacted', { ...info });
      this.#deps.compacted(info);
    } catch (err) {
      stats.compactionErrors++;
      const error = cloudErrors.create('CLD_COMPACTION', errorMessage(err), err);
      this.#deps.log('warn', 'compaction failed; the next round tries again', { error, cause: err instanceof CityError ? err.code : undefined });
      this.#deps.failed(error);
    }
  }
}
