// CPU time from /proc, for the benchmarks that measure a process (or one of its threads) from outside.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's times (USER_HZ, 100 on Linux). */
export const USER_HZ = 100;

/** The command name and utime + stime in clock ticks of a /proc stat file (`/proc/<pid>/stat`, `/proc/self/task/<tid>/stat`). */
export function readStat(path: string): { name: string; ticks: number } {
  const stat = readFileSync(path, 'utf8');
  // The name may hold spaces and parentheses: the fields start after its last ')'.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  // utime and stime: fields 14 and 15 of the file, 11 and 12 after the name.
  return { name: stat.slice(stat.indexOf('(') + 1, close), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** utime + stime of a process so far, in clock ticks. */
export function cpuTicksOf(pid: number): number {
  return readStat(`/proc/${pid}/stat`).ticks;
}
