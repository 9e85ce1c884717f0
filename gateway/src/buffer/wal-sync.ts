// Durability without stalling: in power-loss mode each commit waits for an fdatasync of the WAL that
// started after it, run on libuv's thread pool while the main thread goes on parsing and committing;
// commits that arrive meanwhile share the next flush.
import { closeSync, fdatasync, openSync } from 'node:fs';
import { gatewayErrors } from '../errors.ts';
import { DURABILITY, type Durability } from './records.ts';

export interface WalSync {
  /** Calls back once everything committed so far is durable per the mode (process-crash: at once). */
  sync(callback: (err: Error | null) => void): void;
  /** Closes the WAL descriptor (a flush in flight keeps it until it finishes). */
  close(): void;
}

export function createWalSync(path: string, durability: Durability): WalSync {
  let walFd: number | undefined;
  let flushing = false;
  let closed = false;
  let waiting: ((err: Error | null) => void)[] = [];

  const release = () => {
    if (walFd !== undefined) closeSync(walFd);
    walFd = undefined;
  };

  const flush = () => {
    const batch = waiting;
    waiting = [];
    flushing = true;
    const done = (err: Error | null) => {
      flushing = false;
      if (closed) release();
      const failure = err === null ? null : gatewayErrors.create('GW_BUFFER_WRITE', `fdatasync: ${err.message}`, err);
      for (const cb of batch) cb(failure);
      if (waiting.length > 0) flush();
    };
    try {
      walFd ??= openSync(`${path}-wal`, 'r');
    } catch (err) {
      setImmediate(done, err as Error);
      return;
    }
    fdatasync(walFd, done);
  };

  return {
    sync(callback) {
      if (durability !== DURABILITY.powerLoss) {
        callback(null);
        return;
      }
      waiting.push(callback);
      if (!flushing) flush();
    },
    close() {
      closed = true;
      if (!flushing) release();
    },
  };
}
