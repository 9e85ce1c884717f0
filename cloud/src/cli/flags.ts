// Flags shared by the commands, and the one way a command line is parsed (strict; --help prints usage).
import { isLogLevel, jsonLog, LOG_LEVELS, parseCommandLine, type Log } from '@city/protocol';
import type { ParseArgsOptionsConfig } from 'node:util';
import { cloudErrors } from '../errors.ts';
import type { ObjectStore } from '../ports/store/port.ts';

export const usageError = (detail: string) => cloudErrors.create('CLD_USAGE', detail);

/** Parses a command's flags; undefined when --help was given (the usage is printed then). */
export function parse<const O extends ParseArgsOptionsConfig>(argv: readonly string[], options: O, usage: string, allowPositionals = false) {
  return parseCommandLine(argv, options, { usage, usageError, allowPositionals });
}

export function integerFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usageError(`--${flag} must be a non-negative integer`);
  return Number(value);
}

/** --brokers (or KAFKA_BROKERS) as a list; a usage error when neither is given. */
export function brokersFlag(value: string | undefined): string[] {
  const text = value ?? process.env['KAFKA_BROKERS'];
  if (text === undefined || text.trim() === '') throw usageError('--brokers is required (or set KAFKA_BROKERS)');
  return text.split(',').map((b) => b.trim()).filter((b) => b !== '');
}

/** The JSON log at --log-level (default info); a usage error for an unknown level. */
export function logFlag(value: string | undefined): Log {
  const level = value ?? 'info';
  if (!isLogLevel(level)) throw usageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return jsonLog(level);
}

/** The --s3-* flags of `run` and `query`. */
export const S3_FLAGS = {
  's3-bucket': { type: 'string' },
  's3-prefix': { type: 'string' },
  's3-region': { type: 'string' },
  's3-endpoint': { type: 'string' },
} as const;

export type S3FlagValues = { 's3-bucket'?: string | undefined; 's3-prefix'?: string | undefined; 's3-region'?: string | undefined; 's3-endpoint'?: string | undefined };

/** The S3 store the flags name, or undefined without --s3-bucket; bad values are usage errors (CLD_INVALID_OPTIONS). */
export async function s3StoreFromFlags(values: S3FlagValues): Promise<ObjectStore | undefined> {
  const bucket = values['s3-bucket'];
  if (bucket === undefined) {
    if ((values['s3-prefix'] ?? values['s3-region'] ?? values['s3-endpoint']) !== undefined) {
      throw usageError('--s3-prefix, --s3-region and --s3-endpoint need --s3-bucket');
    }
    return undefined;
  }
  const { createS3Store } = await import('../ports/store/s3.ts');
  return createS3Store({ bucket, prefix: values['s3-prefix'], region: values['s3-region'], endpoint: values['s3-endpoint'] });
}

/** Reports from a process entry, as JSON lines like the rest of its log. */
export function reporter(log: Log): (message: string, fields?: Record<string, unknown>) => void {
  return (message, fields) => log('info', message, fields);
}
