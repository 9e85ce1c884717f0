// Additive schema changes, the rule every catalog adapter applies the same way.
import type { Column } from '@city/protocol';
import { cloudErrors } from '../../errors.ts';

/**
 * Columns after an additive change: the existing ones in their order, then the new ones. Never drops a
 * column; a column whose type changed is refused, since files already written keep the old type.
 */
export function mergeColumns(table: string, existing: readonly Column[], wanted: readonly Column[]): { columns: Column[]; added: Column[] } {
  const byName = new Map(existing.map((c) => [c.name, c]));
  const added: Column[] = [];
  for (const column of wanted) {
    const old = byName.get(column.name);
    if (old === undefined) added.push(column);
    else if (old.type !== column.type) {
      throw cloudErrors.create('CLD_CATALOG', `${table}.${column.name}: type change ${old.type} → ${column.type} is not additive`);
    }
  }
  return { columns: [...existing, ...added], added };
}
