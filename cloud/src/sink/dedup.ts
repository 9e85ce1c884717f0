// The duplicate window: an event whose id appears among the previous `size` records of its
// topic-partition is a duplicate (a gateway retry or replay). Devices key their records, so copies land
// in the same topic-partition. A pure function of the record stream, so a replay or a new owner that
// rebuilds the window from Kafka drops exactly the same records.

/** Ids kept past the window before an eviction round: memory stays within the window plus this many per topic-partition. */
const EVICT_SLACK = 1024;

export class DuplicateWindow {
  readonly size: bigint;
  readonly #width: number;
  /**
   * Per topic-partition: event id → offset of its latest record, in offset order. Offsets are kept as
   * numbers (exact below 2^53, centuries of Kafka offsets): a BigInt per id would be one more heap object
   * kept for the whole window.
   */
  readonly #seen = new Map<string, Map<string, number>>();
  #lastTp = '';
  #last: Map<string, number> | undefined;
  /** At most `size` ids are in the window; past this many, the ones below it are evicted. */
  readonly #evictAbove: number;

  constructor(size: number) {
    this.size = BigInt(size);
    this.#width = size;
    this.#evictAbove = size + EVICT_SLACK;
  }

  /** Records `eventId` at `offset` and says whether it appeared within the window before it. */
  isDuplicate(tp: string, eventId: string, at: bigint): boolean {
    let seen = tp === this.#lastTp ? this.#last : this.#seen.get(tp);
    if (seen === undefined) {
      seen = new Map();
      this.#seen.set(tp, seen);
    }
    this.#lastTp = tp;
    this.#last = seen;
    const offset = Number(at);
    const floor = offset - this.#width;
    // Entries are in offset order: evict from the front, in rounds (the answer below checks the floor itself).
    if (seen.size > this.#evictAbove) {
      for (const [id, seenAt] of seen) {
        if (seenAt >= floor) break;
        seen.delete(id);
      }
    }
    const previous = seen.get(eventId);
    // Re-inserted, so the map stays in offset order.
    if (previous !== undefined) seen.delete(eventId);
    seen.set(eventId, offset);
    return previous !== undefined && previous >= floor && previous < offset;
  }

  /** Forgets a topic-partition (before its window is rebuilt from Kafka). */
  forget(tp: string): void {
    this.#seen.delete(tp);
    if (tp === this.#lastTp) this.#last = undefined;
  }
}
