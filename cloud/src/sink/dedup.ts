// The duplicate window: an event whose id appears among the previous `size` records of its
// topic-partition is a duplicate (a gateway retry or replay). Devices key their records, so copies land
// in the same topic-partition. A pure function of the record stream, so a replay or a new owner that
// rebuilds the window from Kafka drops exactly the same records.

export class DuplicateWindow {
  readonly size: bigint;
  /** Per topic-partition: event id → offset of its latest record, in offset order. */
  readonly #seen = new Map<string, Map<string, bigint>>();

  constructor(size: number) {
    this.size = BigInt(size);
  }

  /** Records `eventId` at `offset` and says whether it appeared within the window before it. */
  isDuplicate(tp: string, eventId: string, offset: bigint): boolean {
    let seen = this.#seen.get(tp);
    if (seen === undefined) {
      seen = new Map();
      this.#seen.set(tp, seen);
    }
    const floor = offset - this.size;
    // Entries are in offset order: evict from the front.
    for (const [id, at] of seen) {
      if (at >= floor) break;
      seen.delete(id);
    }
    const previous = seen.get(eventId);
    seen.delete(eventId);
    seen.set(eventId, offset);
    return previous !== undefined && previous >= floor && previous < offset;
  }

  /** Forgets a topic-partition (before its window is rebuilt from Kafka). */
  forget(tp: string): void {
    this.#seen.delete(tp);
  }
}
