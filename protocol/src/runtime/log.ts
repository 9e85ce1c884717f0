// One logger for every package: a function of (level, message, fields). Components take one; the
// process entry decides where lines go (JSON lines on stderr by default, stdout stays for output).
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Log = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && Object.hasOwn(RANK, value);
}

/** JSON lines (time, level, message, fields) for levels at or above `minLevel`. */
export function jsonLog(minLevel: LogLevel = 'info', stream: NodeJS.WritableStream = process.stderr): Log {
  return (level, message, fields) => {
    if (RANK[level] < RANK[minLevel]) return;
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }, jsonSafe)}\n`);
  };
}

/**
 * Human progress lines (`[prefix] message key=value …`) for commands a person watches, e.g. fetching
 * and starting Kafka.
 */
export function textLog(prefix: string, minLevel: LogLevel = 'info', stream: NodeJS.WritableStream = process.stderr): Log {
  return (level, message, fields) => {
    if (RANK[level] < RANK[minLevel]) return;
    const extra = Object.entries(fields ?? {}).map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v, jsonSafe)}`);
    const mark = level === 'warn' || level === 'error' ? `${level}: ` : '';
    stream.write(`[${prefix}] ${mark}${message}${extra.join('')}\n`);
  };
}

export const silentLog: Log = () => {};

/** Drops lines below `minLevel` before they reach `log`. */
export function filterLog(log: Log, minLevel: LogLevel): Log {
  return (level, message, fields) => {
    if (RANK[level] >= RANK[minLevel]) log(level, message, fields);
  };
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}
