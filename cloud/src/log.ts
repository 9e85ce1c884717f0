// A minimal structured logger: the sink logs through this so the CLI, tests and a future collector can
// each decide where lines go.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type Log = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** JSON lines on stderr, so stdout stays free for command output. */
export function jsonLog(minLevel: LogLevel = 'info', stream: NodeJS.WritableStream = process.stderr): Log {
  return (level, message, fields) => {
    if (RANK[level] < RANK[minLevel]) return;
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }, jsonSafe)}\n`);
  };
}

export const silentLog: Log = () => {};

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}
