// Waiting: a sleep that an AbortSignal cuts short, and a deadline on a promise.

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). `unref` lets the process exit meanwhile. */
export function sleep(ms: number, options: { signal?: AbortSignal | undefined; unref?: boolean } = {}): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    if (options.unref) timer.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Settles as `promise` does, or rejects once `ms` have passed: with the error `onTimeout` makes, or
 * with "`what` took over `ms` ms". The promise itself goes on; only the wait ends.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: string | (() => Error)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(typeof onTimeout === 'string' ? new Error(`${onTimeout} took over ${ms} ms`) : onTimeout()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined or false; rejects after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs: number; intervalMs?: number; what: string | (() => string) },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) {
      const what = typeof options.what === 'string' ? options.what : options.what();
      throw new Error(`${what}: not reached within ${options.timeoutMs} ms`);
    }
    await sleep(options.intervalMs ?? 20);
  }
}
