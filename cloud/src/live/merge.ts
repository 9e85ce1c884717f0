// Second stage: merges the contributions of every source partition into one KPI window. Contributions
// are keyed by KPI and key on the internal topic, so every window of one key meets in one partition
// (and one instance, which also runs the key's alerts). The latest contribution of each source
// replaces its previous one, so a replay or a re-emit never counts twice. Pure, like windows.ts, with
// the same commit rule (first offset of the oldest open window, replay rebuilds quietly).
// A window is final once every contribution received is; another instance's contribution can still
// come after that (it reads its partitions on its own schedule), so a finished window is kept for a
// grace period of wall-clock time after its last change, and a late contribution re-emits it whole.
import { mergePartials, present, valuesOf, type PartialState, type Values } from './aggregate.ts';
import { kpiDefinition, type KpiDefinition } from './definitions.ts';
import type { Commit, CommitMark, Contribution } from './windows.ts';

export interface MergedWindow {
  kpi: string;
  key: string;
  windowStart: number;
  windowEnd: number;
  /** Every contribution received is final. */
  final: boolean;
  partial: PartialState;
  values: Values;
  sources: number;
  revision: number;
}

interface MergeState {
  def: KpiDefinition;
  key: string;
  start: number;
  end: number;
  sources: Map<string, Contribution>;
  firstOffset: bigint;
  dirty: boolean;
  finalSent: boolean;
  revision: number;
  /** Wall-clock time of the tick that last emitted it. */
  changedAt: number;
}

interface PartState {
  wm: number;
  /**
   * Watermark per KPI: one partition holds several KPIs' keys, whose event times can be far apart (air
   * quality an hour ahead of traffic); a window is dropped, and a replay floor set, by its own KPI's.
   */
  wmByKpi: Map<string, number>;
  nextOffset: bigint | undefined;
  highMark: bigint | undefined;
  floor: number;
  /** Max watermark (over contributions) when each window was opened, for the commit mark. */
  windows: Map<string, MergeState & { wmBefore: number }>;
}

export interface MergerOptions {
  allowedLatenessMs: number;
  /** Wall-clock time a finished window is kept after its last change, for instances that report later. */
  graceMs: number;
}

export class Merger {
  readonly #o: MergerOptions;
  readonly #parts = new Map<string, PartState>();
  #unknown = 0;

  constructor(options: MergerOptions) {
    this.#o = options;
  }

  assign(source: string, mark: CommitMark | undefined): void {
    this.#parts.set(source, {
      wm: mark?.wmBefore ?? Number.NEGATIVE_INFINITY,
      nextOffset: undefined,
      highMark: mark === undefined ? undefined : BigInt(mark.highMark),
      floor: mark?.wmAtCommit ?? Number.NEGATIVE_INFINITY,
      wmByKpi: new Map(),
      windows: new Map(),
    });
  }

  revoke(source: string): void {
    this.#parts.delete(source);
  }

  owned(): string[] {
    return [...this.#parts.keys()];
  }

  /** One contribution read at `offset` of the internal topic's partition `source`. */
  add(source: string, offset: bigint, c: Contribution): void {
    let p = this.#parts.get(source);
    if (p === undefined) {
      this.assign(source, undefined);
      p = this.#parts.get(source)!;
    }
    p.nextOffset = offset + 1n;
    const replaying = p.highMark !== undefined && offset < p.highMark;
    const def = kpiDefinition(c.kpi);
    if (def === undefined) {
      this.#unknown++;
    } else if (!(replaying && c.windowEnd + this.#o.allowedLatenessMs <= p.floor)) {
      const id = `${c.kpi}|${c.key}|${c.windowStart}`;
      let w = p.windows.get(id);
      if (w === undefined) {
        w = { def, key: c.key, start: c.windowStart, end: c.windowEnd, sources: new Map(), firstOffset: offset, dirty: false, finalSent: false, revision: 0, changedAt: Number.NEGATIVE_INFINITY, wmBefore: p.wm };
        p.windows.set(id, w);
      }
      w.sources.set(c.source, c);
      w.dirty = true;
    }
    if (Number.isFinite(c.watermark)) {
      p.wm = Math.max(p.wm, c.watermark);
      if (def !== undefined) p.wmByKpi.set(c.kpi, Math.max(p.wmByKpi.get(c.kpi) ?? Number.NEGATIVE_INFINITY, c.watermark));
    }
    if (p.highMark !== undefined && p.nextOffset >= p.highMark) p.highMark = undefined;
  }

  /** `now`: the wall clock, for the grace period of finished windows. */
  tick(now: number): { windows: MergedWindow[]; commits: Commit[] } {
    const out: MergedWindow[] = [];
    const commits: Commit[] = [];
    for (const [source, p] of this.#parts) {
      const quiet = p.highMark !== undefined;
      let minOffset: bigint | undefined;
      let minWm = p.wm;
      let minHorizon = Number.POSITIVE_INFINITY;
      for (const [id, w] of p.windows) {
        if (!quiet && w.dirty) {
          const contributions = [...w.sources.values()];
          const final = contributions.every((c) => c.final);
          const partial = mergePartials(w.def, contributions.map((c) => c.partial));
          w.dirty = false;
          w.finalSent = final;
          w.changedAt = now;
          // A window only a joined input has rows for (cameras without vehicles) has no row in the processed table either.
          if (present(w.def, partial)) {
            w.revision++;
            out.push({ kpi: w.def.name, key: w.key, windowStart: w.start, windowEnd: w.end, final, partial, values: valuesOf(w.def, partial), sources: contributions.length, revision: w.revision });
          }
        }
        const expired = (p.wmByKpi.get(w.def.name) ?? Number.NEGATIVE_INFINITY) >= w.end + this.#o.allowedLatenessMs;
        if (!quiet && w.finalSent && !w.dirty && expired && now - w.changedAt >= this.#o.graceMs) {
          p.windows.delete(id);
          continue;
        }
        minHorizon = Math.min(minHorizon, w.end + this.#o.allowedLatenessMs);
        if (minOffset === undefined || w.firstOffset < minOffset) {
          minOffset = w.firstOffset;
          minWm = w.wmBefore;
        }
      }
      if (quiet || p.nextOffset === undefined) continue;
      commits.push({
        source,
        offset: (minOffset ?? p.nextOffset).toString(),
        // Below every window still open (one may wait past its horizon for a source's final).
        // The replay floor: the slowest KPI's watermark here, so no KPI's contributions are dropped by another's.
        mark: { wmBefore: minOffset === undefined ? p.wm : minWm, wmAtCommit: Math.min(p.wmByKpi.size > 0 ? Math.min(...p.wmByKpi.values()) : p.wm, minHorizon - 1), highMark: p.nextOffset.toString() },
      });
    }
    return { windows: out, commits };
  }

  stats(): { openWindows: number; unknownKpi: number } {
    let open = 0;
    for (const p of this.#parts.values()) open += p.windows.size;
    return { openWindows: open, unknownKpi: this.#unknown };
  }
}
