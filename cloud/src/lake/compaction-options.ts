// Compaction settings: their own module so the sink's options and the CLI's usage name the defaults
// without loading DuckDB.
import { Type, type Static } from '@sinclair/typebox';
import { defineOptions } from '@city/protocol';
import { cloudErrors } from '../errors.ts';

/** Compaction settings (data); the callbacks of CompactOptions go beside them. */
export const CompactionSchema = Type.Object(
  {
    /** Merge consecutive files while their total stays at or under this many bytes. */
    targetBytes: Type.Integer({ minimum: 1, maximum: 64 * 1024 ** 3 }),
    /** Leave the newest file of each topic-partition alone (the sink may still rewrite it). */
    keepNewest: Type.Boolean(),
  },
  { additionalProperties: false },
);

export type CompactionConfig = Static<typeof CompactionSchema>;

export const COMPACT_DEFAULTS: Readonly<CompactionConfig> = { targetBytes: 128 * 1024 * 1024, keepNewest: true };

export const compactionOptions = defineOptions({
  schema: CompactionSchema,
  defaults: COMPACT_DEFAULTS,
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', detail),
});
