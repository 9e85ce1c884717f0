// One way to live and die. A component opens its parts inside start(); each part registers how it is
// closed. close() runs once (every caller gets the same promise) and closes the parts in reverse order
// of opening; past the deadline it stops waiting, aborts `signal` (retries end) and forces what is left.
// A start() that fails closes what it had opened before the error is thrown.
import type { ErrorCatalog, ErrorSpec } from '../errors.ts';

export type LifecycleState = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/** The package's errors for the lifecycle's three refusals. */
export interface LifecycleErrors {
  alreadyStarted(detail: string): Error;
  closed(detail: string): Error;
  /** close() passed its deadline; `detail` names the part it was waiting for. */
  timeout(detail: string): Error;
}

/** The lifecycle's refusals as codes of a package's catalog. */
export function lifecycleErrorsFrom<C extends Record<string, ErrorSpec>>(
  errors: ErrorCatalog<C>,
  codes: { alreadyStarted: keyof C & string; closed: keyof C & string; timeout: keyof C & string },
): LifecycleErrors {
  return {
    alreadyStarted: (detail) => errors.create(codes.alreadyStarted, detail),
    closed: (detail) => errors.create(codes.closed, detail),
    timeout: (detail) => errors.create(codes.timeout, detail),
  };
}

export interface Closer {
  name: string;
  close: () => unknown;
  /** Run instead of close() once the deadline has passed (e.g. disconnect without committing). */
  force?: () => unknown;
}

export interface LifecycleOptions {
  /** Component name, for messages: "gateway", "sink". */
  name: string;
  /** How long close() may take before it forces the rest. */
  deadlineMs: number;
  errors: LifecycleErrors;
  /** How long a forced closer may take before it is left behind. */
  forceGraceMs?: number;
}

export interface Lifecycle {
  readonly state: LifecycleState;
  /** Aborted once close() has passed its deadline: loops and retries stop when they see it. */
  readonly signal: AbortSignal;
  /**
   * Runs `open` once. Parts it registers with `defer` are closed in reverse order when it throws,
   * and the error is rethrown. A second call is an "already started" error; after close, "closed".
   */
  start(open: () => Promise<void>): Promise<void>;
  /** Registers how a part just opened is closed; parts close in reverse order of registration. */
  defer(name: string, close: () => unknown, force?: () => unknown): void;
  /** Closes once; the same promise for every caller. */
  close(): Promise<void>;
  /** Throws the "closed" (or "not running") error unless the component is running. */
  assertRunning(what: string): void;
}

const FORCE_GRACE_MS = 5_000;

export function createLifecycle(options: LifecycleOptions): Lifecycle {
  let state: LifecycleState = 'new';
  const closers: Closer[] = [];
  const abort = new AbortController();
  let starting: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  const closeAll = async (): Promise<void> => {
    const grace = options.forceGraceMs ?? FORCE_GRACE_MS;
    let pending: string | undefined;
    let expired = false;
    let onExpire: () => void = () => undefined;
    const expiry = new Promise<void>((resolve) => (onExpire = resolve));
    const timer = setTimeout(() => {
      expired = true;
      abort.abort();
      onExpire();
    }, options.deadlineMs);
    const failures: unknown[] = [];
    try {
      for (let c = closers.pop(); c !== undefined; c = closers.pop()) {
        if (!expired) {
          pending = c.name;
          const run = Promise.resolve().then(c.close);
          const outcome = await Promise.race([run.then(() => 'done' as const, (err: unknown) => (failures.push(err), 'done' as const)), expiry.then(() => 'expired' as const)]);
          if (outcome === 'done') continue;
          run.catch(() => undefined);
          if (c.force === undefined) continue;
        }
        // Past the deadline: force what is left, each for a short while at most.
        const forced = Promise.resolve().then(c.force ?? c.close);
        await Promise.race([forced.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, grace).unref())]);
      }
    } finally {
      clearTimeout(timer);
      state = 'closed';
    }
    if (expired) throw options.errors.timeout(`${options.name} did not close within ${options.deadlineMs} ms (waiting for ${pending ?? 'nothing'})`);
    if (failures.length > 0) throw failures[0];
  };

  const life: Lifecycle = {
    get state() {
      return state;
    },
    signal: abort.signal,
    start(open) {
      if (state === 'closing' || state === 'closed') return Promise.reject(options.errors.closed(`${options.name} is closed`));
      if (starting !== undefined) return Promise.reject(options.errors.alreadyStarted(`${options.name}: start() called twice`));
      state = 'starting';
      starting = (async () => {
        try {
          await open();
        } catch (err) {
          // Undo what was opened; the start error is what the caller needs to see.
          if (state === 'starting') {
            state = 'closing';
            closing = closeAll();
            await closing.catch(() => undefined);
          }
          throw err;
        }
        if (state === 'starting') state = 'running';
        else throw options.errors.closed(`${options.name} was closed while starting`);
      })();
      return starting;
    },
    defer(name, close, force) {
      closers.push(force === undefined ? { name, close } : { name, close, force });
    },
    close() {
      if (closing !== undefined) return closing;
      if (state === 'new') {
        state = 'closed';
        return (closing = Promise.resolve());
      }
      state = 'closing';
      // A start still under way finishes (or fails) first, so every part it opens is closed here.
      closing = (starting ?? Promise.resolve()).catch(() => undefined).then(closeAll);
      return closing;
    },
    assertRunning(what) {
      if (state === 'running') return;
      if (state === 'closing' || state === 'closed') throw options.errors.closed(`${options.name} is ${state}: ${what}`);
      throw options.errors.closed(`${options.name} is not started: ${what}`);
    },
  };
  return life;
}

/**
 * Process entries: the first SIGINT/SIGTERM closes (with the component's deadline), a second one exits
 * at once with 130. Resolves with the exit code once closed: 0, or 1 when close failed.
 */
export function closeOnSignals(close: () => Promise<void>, report: (message: string, fields?: Record<string, unknown>) => void): Promise<number> {
  return new Promise((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        report('second signal; exiting without finishing shutdown', { signal });
        process.exit(130);
      }
      signalled = true;
      report('shutting down', { signal });
      close().then(
        () => resolve(0),
        (err: unknown) => {
          report('shutdown failed', { error: err instanceof Error ? err.message : String(err) });
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
