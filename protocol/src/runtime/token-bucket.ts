// Token bucket: `rate` tokens per second up to `burst`; rate 0 means unlimited.

export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number = rate, now: number = Date.now()) {
    if (!(rate >= 0) || !(burst >= 0)) throw new RangeError(`token bucket needs rate and burst ≥ 0, got ${rate}, ${burst}`);
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Tokens available now (Infinity when unlimited). */
  available(now: number = Date.now()): number {
    if (this.rate === 0) return Number.POSITIVE_INFINITY;
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
    this.#at = now;
    return this.#tokens;
  }

  /** Takes `n` tokens if there are that many; false (nothing taken) when the caller is over its rate. */
  tryTake(n = 1, now: number = Date.now()): boolean {
    if (this.available(now) < n) return false;
    if (this.rate > 0) this.#tokens -= n;
    return true;
  }

  /** Takes `n` tokens whatever is there (work already done); never drives the bucket below zero. */
  take(n: number, now: number = Date.now()): void {
    if (this.rate > 0) this.#tokens = Math.max(0, this.available(now) - n);
  }

  /** Milliseconds until `n` tokens (capped at the burst) are available. */
  waitMs(n: number, now: number = Date.now()): number {
    if (this.rate === 0) return 0;
    return Math.ceil((Math.max(0, Math.min(n, this.burst) - this.available(now)) / this.rate) * 1000);
  }

  /** True when the bucket is full again, so forgetting it changes nothing. */
  idle(now: number = Date.now()): boolean {
    return this.available(now) >= this.burst;
  }
}
