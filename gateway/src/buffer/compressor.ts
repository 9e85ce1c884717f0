// Segments compressed on the thread pool, off the thread that parses MQTT. Long-lived compressors, one
// frame per segment: a context per call would be freed only when the garbage collector gets to it, and
// the native memory piles up meanwhile (~100 MB after 20k segments here). Up to one per thread-pool
// thread, so commits are compressed side by side. The buffer owns its pool and closes it.
import { constants as zlibConstants, createZstdCompress, type ZstdCompress } from 'node:zlib';
import { gatewayErrors } from '../errors.ts';
import { ZSTD_FAST, packSegment } from './codec.ts';
import type { OutboxRecord } from './records.ts';

/** A commit's records packed uncompressed (what was compressed), with where each value starts. */
export interface PackedSegment {
  data: Buffer;
  valueAt: number[];
}

export type CompressCallback = (err: Error | null, segment: Buffer, packed?: PackedSegment) => void;

export interface CompressorPool {
  /**
   * Packs and compresses records about to be appended, for `append(records, segment)`. Their ids will
   * be consecutive, so the blob does not depend on them.
   */
  compress(records: readonly OutboxRecord[], callback: CompressCallback): void;
  /** Frees the compressors; jobs still waiting are called back with GW_CLOSED. */
  close(): void;
}

const COMPRESSORS = 4;

export function createCompressorPool(size = COMPRESSORS): CompressorPool {
  const idle: ZstdCompress[] = [];
  const busy = new Set<ZstdCompress>();
  const jobs: { packed: PackedSegment; callback: CompressCallback }[] = [];
  let closed = false;

  const next = (): void => {
    if (closed || jobs.length === 0) return;
    let z = idle.pop();
    if (z === undefined) {
      if (busy.size >= size) return;
      z = createZstdCompress(ZSTD_FAST);
    }
    const job = jobs.shift()!;
    const zz = z;
    busy.add(zz);
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer) => chunks.push(chunk);
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      zz.off('data', onData);
      zz.off('error', finish);
      busy.delete(zz);
      // A compressor that failed is dropped; a new one is made when needed.
      if (err === null && !closed) idle.push(zz);
      else zz.destroy();
      if (err === null) job.callback(null, Buffer.concat(chunks), job.packed);
      else job.callback(err, Buffer.alloc(0));
      next();
    };
    zz.on('data', onData);
    zz.once('error', finish);
    zz.write(job.packed.data);
    // Output the flush produced may still be on its way through the stream's nextTick queue when the
    // flush calls back; it has all arrived one event-loop turn later.
    zz.flush(zlibConstants.ZSTD_e_end, () => setImmediate(finish, null));
  };

  return {
    compress(records, callback) {
      let packed: PackedSegment;
      try {
        if (closed) throw gatewayErrors.create('GW_CLOSED', 'the buffer is closed');
        const valueAt = new Array<number>(records.length);
        packed = { data: packSegment(null, records, valueAt), valueAt };
      } catch (err) {
        setImmediate(callback, err as Error, Buffer.alloc(0));
        return;
      }
      jobs.push({ packed, callback });
      next();
    },
    close() {
      if (closed) return;
      closed = true;
      for (const z of idle.splice(0)) z.destroy();
      // A compressor at work finishes its frame and is destroyed then (see finish).
      for (const job of jobs.splice(0)) setImmediate(job.callback, gatewayErrors.create('GW_CLOSED', 'the buffer is closed'), Buffer.alloc(0));
    },
  };
}
