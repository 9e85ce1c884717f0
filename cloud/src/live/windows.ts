// Event-time windows over the records of the Kafka partitions one live instance owns. State is kept
// per source partition, so each window's state is a *contribution*: a deterministic function of one
// partition's records. Contributions of different partitions (and so of different instances) merge
// exactly (merge.ts). Pure: no Kafka, no timers; the caller feeds records and calls tick().
//
// Time rules (per source partition p, kind k):
//   watermark(p)  = max event time seen in p − outOfOrderness(k)
//   global        = min watermark over active partitions (a partition read to its end and without a
//                   record for idleTimeoutMs is idle: it is left out, and follows the global watermark
//                   so its state stays bounded; a partition with a backlog is never idle)
//   final         when global ≥ window end; early updates before that on every tick while changed
//   late          an event whose window end + allowedLateness ≤ watermark(p): counted, dead-lettered
//   dropped       state of a window once watermark(p) ≥ end + allowedLateness (bounded state)
// Restart: the commit for p is the first offset of its oldest open window, with metadata holding the
// watermark just before that record and the watermark at commit time. A replay from there reproduces
// every decision: windows that were already dropped are skipped (their finals were published before
// the commit), open ones are rebuilt whole, and nothing is re-emitted until the replay has passed.
import type { CellValue, EventKind } from '@city/protocol';
import { accumulate, inputOf, keyOf, newAccumulator, rowReader, windowStarts, type Accumulator, type PartialState } from './aggregate.ts';
import { OUT_OF_ORDERNESS_MS, type KpiDefinition } from './definitions.ts';

export interface WindowEngineOptions {
  definitions: readonly KpiDefinition[];
  /** How long after a window's end events still update it (and it is re-emitted). */
  allowedLatenessMs: number;
  outOfOrdernessMs?: Partial<Record<EventKind, number>> | undefined;
  /** A partition without records for this long (wall clock) no longer holds the global watermark back. */
  idleTimeoutMs: number;
}

/** What a partition's committed offset carries, so a restart reproduces the same decisions. */
export interface CommitMark {
  /** Watermark just before the record at the committed offset. */
  wmBefore: number;
  /** Watermark when the commit was made: windows ending (plus lateness) at or before it were published in full. */
  wmAtCommit: number;
  /** Next offset to read when the commit was made: below it, the replay only rebuilds. */
  highMark: string;
}

export interface Contribution {
  kpi: string;
  key: string;
  windowStart: number;
  windowEnd: number;
  /** `topic/partition` the contribution is computed from. */
  source: string;
  final: boolean;
  /** Increases with each emission of this window from this source. */
  revision: number;
  /** The instance's global watermark when emitted. */
  watermark: number;
  partial: PartialState;
}

export interface LateEvent {
  source: string;
  offset: string;
  eventId: string | undefined;
  kind: EventKind;
  kpi: string;
  eventMs: number;
  windowEnd: number;
  watermark: number;
  reason: string;
}

export interface Commit {
  source: string;
  offset: string;
  mark: CommitMark;
}

interface WindowState {
  def: KpiDefinition;
  key: string;
  start: number;
  end: number;
  acc: Accumulator;
  firstOffset: bigint;
  wmBefore: number;
  dirty: boolean;
  finalSent: boolean;
  revision: number;
}

interface PartitionState {
  kind: EventKind;
  wm: number;
  nextOffset: bigint | undefined;
  lastSeen: number;
  /** Read up to the partition's end: only then can silence mean idleness (a backlog is not idle). */
  caughtUp: boolean;
  windows: Map<string, WindowState>;
  /** Replay of what was processed before the last commit: no emissions until nextOffset reaches it. */
  highMark: bigint | undefined;
  floor: number;
}

export interface EngineStats {
  events: number;
  late: number;
  skippedReplay: number;
  openWindows: number;
  partitions: number;
}

export class WindowEngine {
  readonly #o: WindowEngineOptions;
  readonly #byKind = new Map<EventKind, KpiDefinition[]>();
  readonly #parts = new Map<string, PartitionState>();
  #events = 0;
  #late = 0;
  #skipped = 0;

  constructor(options: WindowEngineOptions) {
    this.#o = options;
    for (const d of options.definitions) {
      for (const input of d.inputs) {
        const list = this.#byKind.get(input.source) ?? [];
        list.push(d);
        this.#byKind.set(input.source, list);
      }
    }
  }

  kinds(): EventKind[] {
    return [...this.#byKind.keys()];
  }

  #ooo(kind: EventKind): number {
    return this.#o.outOfOrdernessMs?.[kind] ?? OUT_OF_ORDERNESS_MS[kind];
  }

  /** Starts (or restarts) a partition from its committed mark; its old state, if any, is dropped. */
  assign(source: string, kind: EventKind, mark: CommitMark | undefined, now: number): void {
    this.#parts.set(source, {
      kind,
      wm: mark?.wmBefore ?? Number.NEGATIVE_INFINITY,
      nextOffset: undefined,
      lastSeen: now,
      caughtUp: true,
      windows: new Map(),
      highMark: mark === undefined ? undefined : BigInt(mark.highMark),
      floor: mark?.wmAtCommit ?? Number.NEGATIVE_INFINITY,
    });
  }

  /** Whether `source` has been read to its end (records still waiting keep it active however quiet it is). */
  setCaughtUp(source: string, caughtUp: boolean): void {
    const p = this.#parts.get(source);
    if (p !== undefined) p.caughtUp = caughtUp;
  }

  #idle(p: PartitionState, now: number): boolean {
    return p.caughtUp && now - p.lastSeen >= this.#o.idleTimeoutMs;
  }

  /** Forgets a partition another instance now owns. */
  revoke(source: string): void {
    this.#parts.delete(source);
  }

  owned(): string[] {
    return [...this.#parts.keys()];
  }

  /** One event of `source` at `offset`. Returns the late events it produced (one per KPI it was late for). */
  add(source: string, kind: EventKind, offset: bigint, eventMs: number, row: readonly CellValue[], eventId: string | undefined, now: number): LateEvent[] {
    let p = this.#parts.get(source);
    if (p === undefined) {
      this.assign(source, kind, undefined, now);
      p = this.#parts.get(source)!;
    }
    p.lastSeen = now;
    p.nextOffset = offset + 1n;
    const replaying = p.highMark !== undefined && offset < p.highMark;
    const late: LateEvent[] = [];
    const read = rowReader(kind, row);
    this.#events++;
    for (const d of this.#byKind.get(kind) ?? []) {
      const input = inputOf(d, kind)!;
      const key = keyOf(d, read, input);
      if (key === null) continue;
      for (const start of windowStarts(d, eventMs)) {
        const end = start + d.bucket.sizeMs;
        if (replaying && end + this.#o.allowedLatenessMs <= p.floor) {
          // Published in full before the commit (or dead-lettered then): nothing to redo.
          this.#skipped++;
          continue;
        }
        if (end + this.#o.allowedLatenessMs <= p.wm) {
          this.#late++;
          late.push({
            source, offset: offset.toString(), eventId, kind, kpi: d.name, eventMs, windowEnd: end, watermark: p.wm,
            reason: `late: event time ${new Date(eventMs).toISOString()} is for the ${d.name} window ending ${new Date(end).toISOString()}, closed at watermark ${new Date(p.wm).toISOString()} (allowed lateness ${this.#o.allowedLatenessMs} ms)`,
          });
          continue;
        }
        const id = `${d.name}|${key}|${start}`;
        let w = p.windows.get(id);
        if (w === undefined) {
          w = { def: d, key, start, end, acc: newAccumulator(d), firstOffset: offset, wmBefore: p.wm, dirty: false, finalSent: false, revision: 0 };
          p.windows.set(id, w);
        }
        accumulate(d, w.acc, read, input);
        w.dirty = true;
      }
    }
    p.wm = Math.max(p.wm, eventMs - this.#ooo(kind));
    if (p.highMark !== undefined && p.nextOffset >= p.highMark) p.highMark = undefined;
    return late;
  }

  /** The global watermark: min over active partitions, or the max of all when every one is idle. */
  watermark(now: number): number {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const p of this.#parts.values()) {
      max = Math.max(max, p.wm);
      if (!this.#idle(p, now)) min = Math.min(min, p.wm);
    }
    return min === Number.POSITIVE_INFINITY ? max : min;
  }

  /**
   * Emits what changed (early updates), finals whose window the global watermark passed, re-emits of
   * finals updated by late events; drops expired state; and says what may be committed once the
   * emitted contributions are durable.
   */
  tick(now: number): { contributions: Contribution[]; commits: Commit[] } {
    const global = this.watermark(now);
    const contributions: Contribution[] = [];
    const commits: Commit[] = [];
    for (const [source, p] of this.#parts) {
      if (this.#idle(p, now) && global > p.wm && Number.isFinite(global)) p.wm = global;
      const quiet = p.highMark !== undefined;
      let minOffset: bigint | undefined;
      let minWm = p.wm;
      let minHorizon = Number.POSITIVE_INFINITY;
      for (const [id, w] of p.windows) {
        const final = global >= w.end;
        if (!quiet && (w.dirty || (final && !w.finalSent))) {
          w.revision++;
          w.dirty = false;
          w.finalSent = w.finalSent || final;
          contributions.push({
            kpi: w.def.name, key: w.key, windowStart: w.start, windowEnd: w.end, source, final: w.finalSent, revision: w.revision, watermark: global,
            partial: { ...w.acc.partial },
          });
        }
        if (!quiet && w.finalSent && !w.dirty && p.wm >= w.end + this.#o.allowedLatenessMs) {
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
        // The replay skips windows with end + lateness ≤ wmAtCommit: below every window still open
        // (one past its lateness may still wait for its final, when another partition is behind).
        mark: { wmBefore: minOffset === undefined ? p.wm : minWm, wmAtCommit: Math.min(p.wm, minHorizon - 1), highMark: p.nextOffset.toString() },
      });
    }
    return { contributions, commits };
  }

  stats(): EngineStats {
    let open = 0;
    for (const p of this.#parts.values()) open += p.windows.size;
    return { events: this.#events, late: this.#late, skippedReplay: this.#skipped, openWindows: open, partitions: this.#parts.size };
  }
}

export function encodeMark(mark: CommitMark): string {
  return JSON.stringify({ v: 1, wmBefore: finiteOrNull(mark.wmBefore), wmAtCommit: finiteOrNull(mark.wmAtCommit), highMark: mark.highMark });
}

export function decodeMark(text: string | null | undefined): CommitMark | undefined {
  if (text === null || text === undefined || text === '') return undefined;
  try {
    const v = JSON.parse(text) as { v?: unknown; wmBefore?: unknown; wmAtCommit?: unknown; highMark?: unknown };
    if (v.v !== 1 || typeof v.highMark !== 'string' || !/^\d+$/.test(v.highMark)) return undefined;
    const num = (x: unknown) => (typeof x === 'number' ? x : Number.NEGATIVE_INFINITY);
    return { wmBefore: num(v.wmBefore), wmAtCommit: num(v.wmAtCommit), highMark: v.highMark };
  } catch {
    return undefined;
  }
}

const finiteOrNull = (n: number) => (Number.isFinite(n) ? n : null);
