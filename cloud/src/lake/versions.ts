// Replacement no engine can see: a rewrite of a partition (a processed rebuild, a compaction) writes its
// files under a fresh version location, switches the partition's location in the catalog in one call,
// and deletes the old location only after a grace period, so a reader that listed the old location a
// moment ago can still read it. The catalog partition keeps the retired locations with the time they
// were replaced (parameter city.retired), so a killed job's successor finishes the deletions.
//
// Version locations sit beside the partition folders, under <table prefix>_v/<build>/, with the Hive
// path repeated below: a reader of the partition's base folder (recursive or not) never sees a version,
// Spark's folder discovery skips `_v` (a hidden name), and DuckDB still parses event_date/event_hour
// from the path. Build ids start with the UTC time, so they sort and tell their age.
import { randomBytes } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { CatalogPartition, VersionedCatalog } from '../ports/catalog/port.ts';
import { isLocalStore, type ObjectStore } from '../ports/store/port.ts';
import type { LakePartition } from './layout.ts';
import { supersededFiles } from './reader.ts';

export const VERSIONS_DIR = '_v';
export const PARAM = {
  build: 'city.build',
  final: 'city.final',
  builtAt: 'city.built_at',
  source: 'city.source',
  sourceRows: 'city.source_rows',
  lateRebuilds: 'city.late_rebuilds',
  lateRows: 'city.late_rows',
  retired: 'city.retired',
} as const;

/** Default grace period before a replaced location is deleted. */
export const DEFAULT_GRACE_MS = 10 * 60_000;

export interface Retired {
  location: string;
  /** Epoch ms of the switch away from it. */
  at: number;
}

export function newBuildId(now: number): string {
  return `${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/** Epoch ms a build id was made at, or undefined for names that are not build ids. */
export function buildTime(build: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[0-9a-f]{6}$/.exec(build);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) : undefined;
}

export function versionLocation(tablePrefix: string, partition: LakePartition, build: string): string {
  return `${tablePrefix}${VERSIONS_DIR}/${build}/event_date=${partition.event_date}/event_hour=${partition.event_hour}/`;
}

/** The build of a version location of the table, or undefined (a base partition folder). */
export function buildOf(tablePrefix: string, location: string): string | undefined {
  if (!location.startsWith(`${tablePrefix}${VERSIONS_DIR}/`)) return undefined;
  return location.slice(tablePrefix.length + VERSIONS_DIR.length + 1).split('/')[0];
}

export function retiredOf(p: CatalogPartition | undefined): Retired[] {
  const text = p?.parameters?.[PARAM.retired];
  if (text === undefined || text === '') return [];
  try {
    const list = JSON.parse(text) as unknown;
    return Array.isArray(list) ? list.filter((r): r is Retired => typeof r?.location === 'string' && typeof r?.at === 'number') : [];
  } catch {
    return [];
  }
}

/** Files directly in a location (a version or partition folder), as engines that read a partition list them. */
export async function filesAt(store: ObjectStore, location: string): Promise<string[]> {
  return (await store.list(location)).filter((k) => k.endsWith('.parquet') && !k.slice(location.length).includes('/'));
}

export async function deleteKeys(store: ObjectStore, keys: readonly string[]): Promise<void> {
  if (typeof store.delete !== 'function') throw cloudErrors.create('CLD_STORE_DELETE', `store ${store.root} cannot delete`);
  for (const key of keys) {
    try {
      await store.delete(key);
    } catch (err) {
      throw cloudErrors.create('CLD_STORE_DELETE', `${key}: ${errorMessage(err)}`, err);
    }
  }
}

/** Parameters of a partition switched to a new location: the old one joins the retired list. */
export function switchedParameters(old: CatalogPartition | undefined, now: number, parameters: Record<string, string>): Record<string, string> {
  const retired = retiredOf(old);
  if (old !== undefined && old.location !== '') retired.push({ location: old.location, at: now });
  return { ...parameters, [PARAM.retired]: JSON.stringify(retired) };
}

export interface DueRetirements {
  locations: number;
  files: number;
  /** The partitions whose retired lists lost what was deleted: the catalog must be told. */
  changed: CatalogPartition[];
  /** Every partition, as it will be once `changed` is written. */
  partitions: CatalogPartition[];
}

/**
 * Deletes the retired locations of a table's partitions whose grace period has passed, and returns the
 * partitions without them, for the caller to write to the catalog (deleted first, forgotten after: killed
 * in between, the next run deletes nothing twice harmfully). A location still current in the partitions
 * (or in `alsoCurrent`, e.g. the ones a switch about to be written replaces) is kept.
 */
export async function deleteDueRetirements(
  store: ObjectStore,
  partitions: readonly CatalogPartition[],
  now: number,
  graceMs: number,
  alsoCurrent: ReadonlySet<string> = new Set(),
): Promise<DueRetirements> {
  const current = new Set(partitions.map((p) => p.location));
  const changed: CatalogPartition[] = [];
  let locations = 0;
  let files = 0;
  for (const p of partitions) {
    const retired = retiredOf(p);
    if (retired.length === 0) continue;
    const due = retired.filter((r) => now - r.at >= graceMs && !current.has(r.location) && !alsoCurrent.has(r.location));
    // A retired location current again is forgotten, not deleted; one still current elsewhere waits.
    const keep = retired.filter((r) => !due.includes(r) && (alsoCurrent.has(r.location) || !current.has(r.location)));
    if (due.length === 0) continue;
    for (const r of due) {
      const keys = await filesAt(store, r.location);
      await deleteKeys(store, keys);
      files += keys.length;
      locations++;
    }
    changed.push({ ...p, parameters: { ...(p.parameters ?? {}), [PARAM.retired]: JSON.stringify(keep) } });
  }
  const byId = new Map(changed.map((p) => [p.values.join('/'), p]));
  return { locations, files, changed, partitions: partitions.map((p) => byId.get(p.values.join('/')) ?? p) };
}

/**
 * Version folders no partition points at (written by a job killed before its switch, or replaced twice
 * within a grace period) whose build is older than the grace period: deleted.
 */
export async function sweepOrphans(
  store: ObjectStore,
  catalog: VersionedCatalog,
  table: string,
  tablePrefix: string,
  now: number,
  graceMs: number,
  known?: readonly CatalogPartition[],
): Promise<number> {
  const referenced = new Set<string>();
  for (const p of known ?? (await catalog.partitions(table))) {
    const b = buildOf(tablePrefix, p.location);
    if (b !== undefined) referenced.add(b);
    for (const r of retiredOf(p)) {
      const rb = buildOf(tablePrefix, r.location);
      if (rb !== undefined) referenced.add(rb);
    }
  }
  const orphans: string[] = [];
  for (const key of await store.list(`${tablePrefix}${VERSIONS_DIR}/`)) {
    const b = buildOf(tablePrefix, key);
    if (b === undefined || referenced.has(b)) continue;
    const at = buildTime(b);
    if (at !== undefined && now - at >= graceMs) orphans.push(key);
  }
  await deleteKeys(store, orphans);
  return orphans.length;
}

/** Copies an object to another key (through a scratch file, so the target appears whole). */
export async function copyObject(store: ObjectStore, from: string, to: string): Promise<void> {
  const scratch = await store.scratchPath(to);
  try {
    if (typeof store.download === 'function') await store.download(from, scratch);
    else if (isLocalStore(store)) await copyFile(store.locate(from), scratch);
    else throw new Error(`store ${store.root} cannot read objects back`);
    await store.put(to, scratch);
  } catch (err) {
    await store.discard(scratch).catch(() => undefined);
    throw cloudErrors.create('CLD_STORE_PUT', `copying ${from} to ${to}: ${errorMessage(err)}`, err);
  }
}

const nameOf = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

/**
 * Whether a file named `name` is already in `targetKeys` (same name) or covered by a merged file there
 * (its rows are in it). File names are read as if in the partition's base folder `base`. With
 * sameName false only a merged file counts (the sink's own rewrite of a file replaces an older copy).
 */
export function presentIn(base: string, targetKeys: readonly string[], name: string, sameName = true): boolean {
  const names = targetKeys.map(nameOf);
  if (sameName && names.includes(name)) return true;
  const superseded = supersededFiles([...names.map((n) => base + n), base + name]);
  return superseded.has(base + name);
}

/**
 * Carries files of `from` that `to` lacks over to `to` (the sink appended them after a rewrite began,
 * or to a location it had read just before a switch). Returns the keys copied.
 */
export async function carryOver(store: ObjectStore, base: string, from: string, to: string, skip: ReadonlySet<string> = new Set()): Promise<string[]> {
  if (from === to) return [];
  const target = await filesAt(store, to);
  const copied: string[] = [];
  for (const key of await filesAt(store, from)) {
    const name = nameOf(key);
    if (skip.has(name) || presentIn(base, [...target, ...copied], name)) continue;
    await copyObject(store, key, to + name);
    copied.push(to + name);
  }
  return copied;
}
