// City time. The simulated city keeps Central European time with EU daylight saving, computed here
// rather than through Intl so output never depends on the ICU data of the Node build.

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

function lastSundayUtc(year: number, month: number): number {
  const lastDay = new Date(Date.UTC(year, month + 1, 0));
  return Date.UTC(year, month, lastDay.getUTCDate() - lastDay.getUTCDay());
}

/** Offset of city civil time from UTC, in minutes: CET (+60) or CEST (+120). */
export function utcOffsetMinutes(ms: number): number {
  const year = new Date(ms).getUTCFullYear();
  // EU rule: summer time from the last Sunday of March to the last Sunday of October, 01:00 UTC.
  const start = lastSundayUtc(year, 2) + HOUR_MS;
  const end = lastSundayUtc(year, 9) + HOUR_MS;
  return ms >= start && ms < end ? 120 : 60;
}

export interface LocalTime {
  /** Civil hour of day in the city, fractional, [0, 24). */
  hour: number;
  /** Hour of day in standard time (CET), which tracks the sun; used for weather. */
  standardHour: number;
  /** 0 = Sunday … 6 = Saturday, civil. */
  weekday: number;
  /** 1-based day of the year, fractional (civil). */
  dayOfYear: number;
  offsetMinutes: number;
}

export function localTime(ms: number): LocalTime {
  const offsetMinutes = utcOffsetMinutes(ms);
  const local = new Date(ms + offsetMinutes * 60_000);
  const hour = local.getUTCHours() + local.getUTCMinutes() / 60 + local.getUTCSeconds() / 3600;
  const standardHour = (hour - (offsetMinutes - 60) / 60 + 24) % 24;
  const yearStart = Date.UTC(local.getUTCFullYear(), 0, 1);
  const dayOfYear = 1 + (local.getTime() - yearStart) / DAY_MS;
  return { hour, standardHour, weekday: local.getUTCDay(), dayOfYear, offsetMinutes };
}

/** The city's civil time of `ms` written without an offset: what a misconfigured device sends. */
export function naiveLocalIso(ms: number, separator: 'T' | ' ' = 'T'): string {
  const local = new Date(ms + utcOffsetMinutes(ms) * 60_000).toISOString();
  return `${local.slice(0, 10)}${separator}${local.slice(11, 19)}`;
}

/** Epoch ms of a civil date-time in the city (for tests and the CLI's --start-time). */
export function cityTimeToUtc(year: number, month: number, day: number, hour = 0, minute = 0): number {
  const guess = Date.UTC(year, month - 1, day, hour, minute);
  // Two passes settle the offset except inside the skipped/repeated DST hour, which is fine here.
  const first = guess - utcOffsetMinutes(guess) * 60_000;
  return guess - utcOffsetMinutes(first) * 60_000;
}

export { HOUR_MS, DAY_MS };
