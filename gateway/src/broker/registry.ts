// Device registry: who may connect. Kept in its own SQLite file so that moving a corrupt buffer aside
// never forgets the city's devices. Secrets are stored only as salted scrypt hashes.
import { randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ID_PATTERN } from '@city/protocol';
import { gatewayErrors } from '../errors.ts';

/** The protocol's id rule: events from any other id would be dead-lettered anyway. */
export const DEVICE_ID_PATTERN = new RegExp(ID_PATTERN);
const MIN_SECRET_LENGTH = 16;
const KEY_LENGTH = 32;
/** scrypt cost; stored with each hash so it can be raised later without breaking old entries. */
export const DEFAULT_SCRYPT = { N: 16_384, r: 8, p: 1 } as const;

export interface DeviceEntry {
  deviceId: string;
  createdAt: number;
  revokedAt: number | null;
}

export type VerifyResult = { ok: true } | { ok: false; reason: 'unknown' | 'revoked' | 'bad-secret' };

export interface DeviceRegistry {
  readonly path: string;
  /** Adds a device (or re-enables a revoked one with a new secret). Returns the secret, generated if not given. */
  add(deviceId: string, secret?: string): string;
  list(): DeviceEntry[];
  /** Returns false if the device is unknown. Running gateways drop its connection at their next check. */
  revoke(deviceId: string): boolean;
  get(deviceId: string): DeviceEntry | undefined;
  isActive(deviceId: string): boolean;
  verify(deviceId: string, secret: Buffer | string): Promise<VerifyResult>;
  /** Changes whenever any connection (another process too) committed a write; cheap to poll. */
  version(): number;
  close(): void;
}

interface Row {
  device_id: string;
  hash: string;
  created_at: number;
  revoked_at: number | null;
}

function scryptAsync(secret: Buffer, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEY_LENGTH, { ...options, maxmem: 256 * options.N! * options.r! }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export function hashSecret(secret: string, cost: { N: number; r: number; p: number } = DEFAULT_SCRYPT): string {
  const salt = randomBytes(16);
  const key = scryptSync(secret, salt, KEY_LENGTH, { ...cost, maxmem: 256 * cost.N * cost.r });
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifySecret(stored: string, secret: Buffer | string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || salt === undefined || key === undefined) return false;
  const expected = Buffer.from(key, 'base64');
  const actual = await scryptAsync(Buffer.from(secret), Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function checkDeviceId(deviceId: string): void {
  if (!DEVICE_ID_PATTERN.test(deviceId)) {
    throw gatewayErrors.create('GW_DEVICE_INVALID', `device id "${deviceId}" must match ${DEVICE_ID_PATTERN.source}`);
  }
}

export function openRegistry(path: string, options: { scrypt?: { N: number; r: number; p: number } } = {}): DeviceRegistry {
  const cost = options.scrypt ?? DEFAULT_SCRYPT;
  let db: Database.Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(`CREATE TABLE IF NOT EXISTS devices (
      device_id TEXT PRIMARY KEY,
      hash TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      revoked_at INTEGER
    ) STRICT`);
  } catch (err) {
    throw gatewayErrors.create('GW_REGISTRY_OPEN', `${path}: ${(err as Error).message}`, err);
  }
  const getRow = db.prepare<[string], Row>('SELECT device_id, hash, created_at, revoked_at FROM devices WHERE device_id = ?');
  const upsert = db.prepare(
    `INSERT INTO devices (device_id, hash, created_at, revoked_at) VALUES (?, ?, ?, NULL)
     ON CONFLICT (device_id) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, revoked_at = NULL`,
  );
  const revokeRow = db.prepare('UPDATE devices SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL');
  const listRows = db.prepare<[], Row>('SELECT device_id, hash, created_at, revoked_at FROM devices ORDER BY device_id');
  const toEntry = (row: Row): DeviceEntry => ({ deviceId: row.device_id, createdAt: row.created_at, revokedAt: row.revoked_at });
  let closed = false;
  let dummyHash: string | undefined;
  const open = (): void => {
    if (closed) throw gatewayErrors.create('GW_CLOSED', `device registry ${path} is closed`);
  };

  return {
    path,
    add(deviceId, secret) {
      open();
      checkDeviceId(deviceId);
      const value = secret ?? randomBytes(24).toString('base64url');
      if (value.length < MIN_SECRET_LENGTH) {
        throw gatewayErrors.create('GW_DEVICE_INVALID', `secret for "${deviceId}" must be at least ${MIN_SECRET_LENGTH} characters`);
      }
      upsert.run(deviceId, hashSecret(value, cost), Date.now());
      return value;
    },
    list() {
      open();
      return listRows.all().map(toEntry);
    },
    revoke(deviceId) {
      open();
      const row = getRow.get(deviceId);
      if (row === undefined) return false;
      revokeRow.run(Date.now(), deviceId);
      return true;
    },
    get(deviceId) {
      open();
      const row = getRow.get(deviceId);
      return row === undefined ? undefined : toEntry(row);
    },
    isActive(deviceId) {
      open();
      const row = getRow.get(deviceId);
      return row !== undefined && row.revoked_at === null;
    },
    async verify(deviceId, secret) {
      open();
      const row = getRow.get(deviceId);
      // Unknown ids still pay for one hash, so timing does not tell which ids exist.
      if (row === undefined) {
        dummyHash ??= hashSecret('not-a-real-device-secret', cost);
        await verifySecret(dummyHash, secret);
        return { ok: false, reason: 'unknown' };
      }
      const good = await verifySecret(row.hash, secret);
      if (row.revoked_at !== null) return { ok: false, reason: 'revoked' };
      return good ? { ok: true } : { ok: false, reason: 'bad-secret' };
    },
    version() {
      open();
      return db.pragma('data_version', { simple: true }) as number;
    },
    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
