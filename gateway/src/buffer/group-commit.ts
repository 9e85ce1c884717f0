// Group commit: everything that arrives within one window shares one transaction (and one WAL flush).
// Each commit's records are packed and compressed (compressor.ts), then stored in the order the
// commits were cut (where compressions run on the thread pool they may finish in any order). A device is acknowledged once its record
// is durable: in power-loss mode after a flush of the WAL that started after its commit.
import type { Log } from '@city/protocol';
import { gatewayErrors } from '../errors.ts';
import type { PackedSegment } from './compressor.ts';
import type { OutboxBuffer } from './outbox.ts';
import type { OutboxRecord } from './records.ts';

/** Called once the record is durable, or with the reason it was not stored (then it is not acknowledged). */
export type Done = (err?: Error | null) => void;

export interface GroupCommitOptions {
  /** 0 commits what arrived in one event-loop turn. */
  windowMs: number;
  /** A commit also closes as soon as this many records wait. */
  maxRecords: number;
  log: Log;
  /** New records are stored (the forwarder is woken). */
  onStored: () => void;
}

export interface GroupCommit {
  enqueue(record: OutboxRecord, done: Done): void;
  /** Cuts what waits now and resolves once every commit cut so far is stored. */
  flush(): Promise<void>;
  /** Flushes, then refuses what comes later (GW_CLOSED). */
  close(): Promise<void>;
  counters(): { groupCommits: number; commitFailures: number };
  /** Why the buffer does not take writes (a failed commit or flush, a full buffer); undefined once a commit succeeds. */
  error(): string | undefined;
}

interface Cut {
  /** Each record's callback, by the record's index. */
  batch: Done[];
  records: OutboxRecord[];
  segment: Buffer | undefined;
  packed: PackedSegment | undefined;
  ready: boolean;
}

export function createGroupCommit(buffer: OutboxBuffer, options: GroupCommitOptions): GroupCommit {
  const { log } = options;
  const counts = { groupCommits: 0, commitFailures: 0 };
  let bufferError: string | undefined;
  let closed = false;
  // Two parallel arrays rather than an object per record: the cut takes them as they are.
  let pending: OutboxRecord[] = [];
  let dones: Done[] = [];
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  const compressing: Cut[] = [];
  let storedWaiters: (() => void)[] = [];

  const cancelTimer = () => {
    clearTimeout(timer as NodeJS.Timeout);
    clearImmediate(timer as NodeJS.Immediate);
    timer = undefined;
  };

  const commit = (): void => {
    timer = undefined;
    if (pending.length === 0) return;
    const cut: Cut = { batch: dones, records: pending, segment: undefined, packed: undefined, ready: false };
    pending = [];
    dones = [];
    compressing.push(cut);
    buffer.compress(cut.records, (err, segment, packed) => {
      cut.ready = true;
      // Without a segment (packing failed) append packs the records itself, and reports what is wrong.
      if (err === null) {
        cut.segment = segment;
        cut.packed = packed;
      }
      while (compressing[0]?.ready) store(compressing.shift()!);
      if (compressing.length > 0) return;
      const waiters = storedWaiters;
      storedWaiters = [];
      for (const resolve of waiters) resolve();
    });
  };

  const store = ({ batch, records, segment, packed }: Cut): void => {
    let failure: Error | undefined;
    let refused: readonly number[] = [];
    try {
      const result = buffer.append(records, segment, packed);
      counts.groupCommits++;
      bufferError = undefined;
      refused = result.refused;
      if (refused.length > 0) bufferError = `full: ${refused.length} records refused, nothing evictable`;
      if (result.evicted > 0) log('warn', 'buffer full; evicted the oldest records of the lowest lane', { evicted: result.evicted });
    } catch (err) {
      failure = err as Error;
      bufferError = failure.message;
      counts.commitFailures++;
      log('error', 'buffer commit failed; devices are not acknowledged and will resend', { records: batch.length, error: failure.message });
    }
    if (refused.length > 0) {
      // Not stored, so not acknowledged: aedes drops the connection and the device resends later.
      const full = gatewayErrors.create('GW_BUFFER_FULL', `${refused.length} records refused`);
      log('error', 'buffer full and nothing evictable; refusing publishes', { records: refused.length });
      for (const i of refused) batch[i]!(full);
    }
    const skip = new Set(refused);
    const stored = skip.size === 0 ? batch : batch.filter((_, i) => !skip.has(i));
    if (failure !== undefined) {
      for (const done of stored) done(failure);
      return;
    }
    options.onStored();
    buffer.sync((err) => {
      if (err !== null) {
        counts.commitFailures++;
        bufferError = err.message;
        log('error', 'buffer flush failed; devices are not acknowledged and will resend', { records: stored.length, error: err.message });
      }
      for (const done of stored) done(err);
    });
  };

  const flush = (): Promise<void> => {
    cancelTimer();
    commit();
    return compressing.length === 0 ? Promise.resolve() : new Promise((resolve) => storedWaiters.push(resolve));
  };

  return {
    enqueue(record, done) {
      if (closed) {
        done(gatewayErrors.create('GW_CLOSED', 'the buffer takes no more records'));
        return;
      }
      pending.push(record);
      dones.push(done);
      if (pending.length >= options.maxRecords) {
        cancelTimer();
        commit();
      } else if (timer === undefined) {
        timer = options.windowMs === 0 ? setImmediate(commit) : setTimeout(commit, options.windowMs);
      }
    },
    flush,
    close() {
      closed = true;
      return flush();
    },
    counters: () => ({ ...counts }),
    error: () => bufferError,
  };
}
