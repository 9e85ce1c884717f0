// `sink compact`: merges small lake files into target-size ones. Progress goes to stdout one line per
// durable step, so a run killed midway shows how far it got; running it again finishes the job.
import { parseArgs } from 'node:util';
import { compactLake, COMPACT_DEFAULTS, type CompactStep } from './compaction.ts';
import { cloudErrors, errorMessage } from './errors.ts';
import { isLakeTable, type LakeTable } from './layout.ts';
import { createLocalFolderStore } from './store.ts';

export const COMPACT_USAGE = `  sink compact --lake DIR [--target-bytes N] [--table T]… [--sealed]
      merges small files per partition into files of up to N bytes (default ${COMPACT_DEFAULTS.targetBytes});
      --sealed also merges the newest file of each Kafka partition (only once the sink has moved on)`;

export async function compactCommand(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: false,
      strict: true,
      options: {
        lake: { type: 'string' },
        'target-bytes': { type: 'string' },
        table: { type: 'string', multiple: true },
        sealed: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw cloudErrors.create('CLD_USAGE', errorMessage(err));
  }
  const { values } = parsed;
  if (values.lake === undefined) throw cloudErrors.create('CLD_USAGE', '--lake is required');
  const targetText = values['target-bytes'];
  if (targetText !== undefined && !/^[1-9]\d*$/.test(targetText)) throw cloudErrors.create('CLD_USAGE', '--target-bytes must be a positive integer');
  const tables: LakeTable[] = [];
  for (const t of values.table ?? []) {
    if (!isLakeTable(t)) throw cloudErrors.create('CLD_USAGE', `--table: unknown table "${t}"`);
    tables.push(t);
  }
  const store = createLocalFolderStore(values.lake);
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
    await store.close();
  }
}

function progressLine(step: CompactStep): string {
  return step.step === 'merged'
    ? `merged ${step.key} ${step.inputs.length} files ${step.rows} rows ${step.bytes} bytes`
    : `deleted ${step.key}`;
}
