// Rates between two readings of a counter (health events between reports, /metrics between samples).

/** Messages per second between two readings of a counter. */
export interface RateMeter {
  /** Rate since the previous call (the first call measures from creation). */
  next(count: number, now?: number): number;
}

export function createRateMeter(initial = 0, startedAt = Date.now()): RateMeter {
  let previous = { at: startedAt, count: initial };
  return {
    next(count, now = Date.now()) {
      const seconds = Math.max(0.001, (now - previous.at) / 1000);
      // A counter that went backwards (a restart of its source) counts as no traffic, never negative.
      const rate = Math.max(0, count - previous.count) / seconds;
      previous = { at: now, count };
      return rate;
    },
  };
}

