// `sink compact`: merges small lake files into target-size ones. Progress goes to stdout one line per
// durable step, so a run killed midway shows how far it got; running it again finishes the job.
import type { CompactStep } from '../lake/compaction.ts';
import { isLakeTable, type LakeTable } from '../lake/layout.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import { parse, usageError } from './flags.ts';
import { COMPACT_USAGE } from './usage.ts';

export async function compactCommand(args: readonly string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      lake: { type: 'string' },
      'target-bytes': { type: 'string' },
      table: { type: 'string', multiple: true },
      sealed: { type: 'boolean' },
      catalog: { type: 'string' },
      'grace-ms': { type: 'string' },
    },
    COMPACT_USAGE,
  );
  if (parsed === undefined) return 0;
  const { values } = parsed;
  if (values.lake === undefined) throw usageError('--lake is required');
  const targetText = values['target-bytes'];
  if (targetText !== undefined && !/^[1-9]\d*$/.test(targetText)) throw usageError('--target-bytes must be a positive integer');
  const tables: LakeTable[] = [];
  for (const t of values.table ?? []) {
    if (!isLakeTable(t)) throw usageError(`--table: unknown table "${t}"`);
    tables.push(t);
  }
  if (values.catalog !== undefined && values.catalog !== 'local') throw usageError('--catalog must be local');
  const graceText = values['grace-ms'];
  if (graceText !== undefined && !/^\d+$/.test(graceText)) throw usageError('--grace-ms must be a non-negative integer');
  const { compactLake } = await import('../lake/compaction.ts');
  const store = createLocalFolderStore(values.lake);
  const catalog = values.catalog === 'local' ? (await import('../ports/catalog/local.ts')).createLocalCatalog(values.lake) : undefined;
  const abort = new AbortController();
  // First signal: stop after the current step (the lake stays consistent either way).
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const results = await compactLake(store, {
      targetBytes: targetText === undefined ? undefined : Number(targetText),
      keepNewest: values.sealed !== true,
      tables: tables.length > 0 ? tables : undefined,
      signal: abort.signal,
      ...(catalog === undefined ? {} : { catalog }),
      ...(graceText === undefined ? {} : { graceMs: Number(graceText) }),
      onProgress: (step) => process.stdout.write(`${progressLine(step)}\n`),
    });
    let merged = 0;
    let deleted = 0;
    let finished = 0;
    let skipped = 0;
    for (const r of results) {
      merged += r.merged.length;
      deleted += r.deleted;
      finished += r.finished;
      skipped += r.skipped.length;
      for (const s of r.skipped) process.stderr.write(`skipped ${s.key}: ${s.reason}\n`);
    }
    process.stdout.write(
      `compacted ${results.length} partitions: ${merged} files written, ${deleted} superseded files deleted` +
        ` (${finished} left by an interrupted run), ${skipped} skipped${abort.signal.aborted ? ', stopped early by a signal' : ''}\n`,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await catalog?.close();
    await store.close();
  }
}

function progressLine(step: CompactStep): string {
  switch (step.step) {
    case 'merged':
      return `merged ${step.key} ${step.inputs.length} files ${step.rows} rows ${step.bytes} bytes`;
    case 'deleted':
      return `deleted ${step.key}`;
    case 'carried':
      return `carried ${step.key} from ${step.from}`;
    case 'switched':
      return `switched ${step.from} → ${step.location}`;
    case 'retired':
      return `retired ${step.location} (${step.files} files)`;
  }
}
