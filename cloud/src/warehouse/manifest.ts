// Redshift's way in: a COPY manifest of lake objects (with content_length, which COPY … PARQUET needs)
// put in the lake, and the steps that stage its rows in a temp table.
import { writeFile } from 'node:fs/promises';
import type { ObjectStore } from '../ports/store/port.ts';
import type { WarehouseStep } from './port.ts';
import { quoteIdent, quoteLiteral } from './schema.ts';

export async function stageFromManifest(
  store: ObjectStore,
  manifestKey: string,
  objects: readonly { key: string; bytes: number }[],
  stage: string,
  stageColumns: readonly string[],
  role: string,
): Promise<WarehouseStep[]> {
  const manifest = { entries: objects.map((o) => ({ url: store.locate(o.key), mandatory: true, meta: { content_length: o.bytes } })) };
  const scratchPath = await store.scratchPath(manifestKey);
  await writeFile(scratchPath, JSON.stringify(manifest));
  await store.put(manifestKey, scratchPath);
  return [
    { sql: `CREATE TEMP TABLE ${quoteIdent(stage)} (${stageColumns.join(', ')})` },
    { sql: `COPY ${quoteIdent(stage)} FROM ${quoteLiteral(store.locate(manifestKey))} IAM_ROLE ${role} FORMAT AS PARQUET MANIFEST` },
  ];
}
