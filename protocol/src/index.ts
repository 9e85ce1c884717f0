// Public entry of @city/protocol: the wire contract (event schemas, validation, topics, headers, table
// schemas) and the small runtime every package shares (errors, options, lifecycle, logging, time, CLI).
import { filterDependencyWarnings } from './runtime/warnings.ts';

filterDependencyWarnings();

export * from './schemas.ts';
export * from './validate.ts';
export * from './topics.ts';
export * from './headers.ts';
export * from './table.ts';
export * from './errors.ts';
export * from './examples.ts';
export * from './runtime/log.ts';
export * from './runtime/options.ts';
export * from './runtime/lifecycle.ts';
export * from './runtime/time.ts';
export * from './runtime/token-bucket.ts';
export * from './runtime/cli.ts';
export * from './kafka-security.ts';
export * from './live-tables.ts';
