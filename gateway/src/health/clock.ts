// Whether the system clock is synchronised, so each receive stamp can say if it is to be trusted: a
// board with no RTC boots with a wrong clock (1970, or fake-hwclock's last save) until time sync.
//
// Node has no adjtimex binding and the kernel exposes STA_UNSYNC nowhere in /proc or /sys, so the
// check reads files: systemd-timesyncd (Debian's and Raspberry Pi OS's default) creates
// /run/systemd/timesync/synchronized at its first sync after boot (systemd ≥ 239; /run is a tmpfs, so
// it is gone after a reboot) inside a directory it creates when it starts. Hence: flag present =
// synchronised; flag absent while its directory exists = a time service runs but has not synchronised;
// neither = no known time service (unknown). chrony and ntpd write no such file: point `syncFlag` at a
// file a hook creates once they report sync (e.g. `chronyc waitsync` then touch), or leave it unknown.
// Independently of any service, a clock earlier than this release cannot be right: unsynchronised.
// Sampled with an async stat on an unref'd timer; a receive stamp reads the cached state.
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export const CLOCK_STATES = ['synchronized', 'unsynchronized', 'unknown'] as const;
export type ClockState = (typeof CLOCK_STATES)[number];

/** systemd-timesyncd's flag file. */
export const TIMESYNCD_FLAG = '/run/systemd/timesync/synchronized';
/** A clock before this (2026-01-01T00:00:00Z) is certainly wrong: earlier than this release. */
export const CLOCK_FLOOR_MS = Date.UTC(2026, 0, 1);

export interface ClockWatchOptions {
  /** The flag file whose presence means synchronised; '' = no time service to ask. */
  syncFlag: string;
  /** Between two checks (the timer is unref'd). */
  intervalMs: number;
  /** A clock earlier than this is unsynchronised whatever the flag says (default CLOCK_FLOOR_MS). */
  floorMs?: number;
  now?: () => number;
}

export interface ClockReading {
  state: ClockState;
  /** What decided it: the flag file, its absence, the floor, or that no source was found. */
  source: 'flag' | 'no-flag' | 'floor' | 'none';
  /** When it was checked (epoch ms, by the very clock in question). */
  at: number;
}

export interface ClockWatch {
  /** Checks now, then every intervalMs. Resolves after the first check. */
  start(): Promise<ClockReading>;
  /** Checks now (callers during one check share it). */
  check(): Promise<ClockReading>;
  /** The last reading; unknown until the first check. */
  latest(): ClockReading;
  /** For a receive stamp: true, false, or undefined when unknown. */
  synced(): boolean | undefined;
  close(): void;
}

const exists = async (path: string): Promise<boolean | undefined> => {
  try {
    await stat(path);
    return true;
  } catch (err) {
    // Unreadable (permissions, sandbox) says nothing either way.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? false : undefined;
  }
};

export async function readClock(options: Pick<ClockWatchOptions, 'syncFlag' | 'floorMs' | 'now'>): Promise<ClockReading> {
  const at = (options.now ?? Date.now)();
  if (at < (options.floorMs ?? CLOCK_FLOOR_MS)) return { state: 'unsynchronized', source: 'floor', at };
  if (options.syncFlag === '') return { state: 'unknown', source: 'none', at };
  const flag = await exists(options.syncFlag);
  if (flag === true) return { state: 'synchronized', source: 'flag', at };
  if (flag === false && (await exists(dirname(options.syncFlag))) === true) return { state: 'unsynchronized', source: 'no-flag', at };
  return { state: 'unknown', source: 'none', at };
}

export function createClockWatch(options: ClockWatchOptions): ClockWatch {
  let last: ClockReading = { state: 'unknown', source: 'none', at: 0 };
  let inFlight: Promise<ClockReading> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const check = (): Promise<ClockReading> =>
    (inFlight ??= readClock(options)
      .then((reading) => {
        if (!closed) last = reading;
        return reading;
      })
      .finally(() => {
        inFlight = undefined;
      }));

  return {
    async start() {
      const first = await check();
      if (!closed && timer === undefined) timer = setInterval(() => void check(), options.intervalMs).unref();
      return first;
    },
    check,
    latest: () => last,
    synced: () => (last.state === 'unknown' ? undefined : last.state === 'synchronized'),
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}
