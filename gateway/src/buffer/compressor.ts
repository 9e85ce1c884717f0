// Segment compression on long-lived zstd contexts, one frame per segment: a context per call would be
// freed only when the garbage collector gets to it, and the native memory piles up meanwhile (~100 MB
// after 20k segments here).
//
// One context driven synchronously on this thread: a segment of a few dozen records compresses in a
// few µs there, while handing it to the thread pool through a zlib stream cost ~40–100 µs of this
// thread and the pool per segment (stream machinery, two dispatches, callbacks). The synchronous
// entry of a zlib handle is not public API; when a Node release lacks it, segments go through the
// streams on the thread pool as before (up to one per thread-pool thread, side by side).
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

/** The synchronous side of a zlib handle, as node:zlib's own *Sync functions drive it. */
interface SyncHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
}
interface StreamInternals {
  _handle?: SyncHandle | null;
  _writeState?: unknown;
}

/** One zstd frame per call, on one long-lived context. */
export type DirectZstd = (data: Buffer) => Buffer;

const OUT_CHUNK = 64 * 1024;

/** Undefined when this Node's zlib handles have no synchronous entry. */
export function openDirectZstd(): { compress: DirectZstd; close(): void } | undefined {
  let stream: ZstdCompress | undefined;
  const out = Buffer.allocUnsafeSlow(OUT_CHUNK);
  const open = (): { z: ZstdCompress; handle: SyncHandle; state: Uint32Array } | undefined => {
    stream ??= createZstdCompress(ZSTD_FAST);
    // A failed frame destroys the stream and reports through 'error': checked after each call instead.
    if (stream.listenerCount('error') === 0) stream.on('error', () => undefined);
    const { _handle: handle, _writeState: state } = stream as unknown as StreamInternals;
    if (handle === undefined || handle === null || typeof handle.writeSync !== 'function' || !(state instanceof Uint32Array) || state.length < 2) return undefined;
    return { z: stream, handle, state };
  };
  if (open() === undefined) {
    stream?.destroy();
    return undefined;
  }
  return {
    compress(data) {
      const ctx = open();
      if (ctx === undefined) throw gatewayErrors.create('GW_BUFFER_WRITE', 'zstd context unavailable');
      const { z, handle, state } = ctx;
      const parts: Buffer[] = [];
      let inOff = 0;
      let inLen = data.length;
      for (;;) {
        handle.writeSync(zlibConstants.ZSTD_e_end, data, inOff, inLen, out, 0, OUT_CHUNK);
        if (z.destroyed) {
          // The context is gone with the stream; the next segment gets a new one.
          stream = undefined;
          throw gatewayErrors.create('GW_BUFFER_WRITE', 'zstd compression failed');
        }
        const availOut = state[0]!;
        const availIn = state[1]!;
        parts.push(Buffer.from(out.subarray(0, OUT_CHUNK - availOut)));
        inOff += inLen - availIn;
        inLen = availIn;
        // Output room left over: the frame is complete.
        if (availOut !== 0) break;
      }
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
    close() {
      stream?.destroy();
      stream = undefined;
    },
  };
}

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

/** `streams`: always the thread pool, as where Node has no synchronous handle. */
export function createCompressorPool(size = COMPRESSORS, mode: 'direct' | 'streams' = 'direct'): CompressorPool {
  const direct = mode === 'direct' ? openDirectZstd() : undefined;
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
      if (direct !== undefined) {
        let segment: Buffer;
        try {
          segment = direct.compress(packed.data);
        } catch (err) {
          setImmediate(callback, err as Error, Buffer.alloc(0));
          return;
        }
        callback(null, segment, packed);
        return;
      }
      jobs.push({ packed, callback });
      next();
    },
    close() {
      if (closed) return;
      closed = true;
      direct?.close();
      for (const z of idle.splice(0)) z.destroy();
      // A compressor at work finishes its frame and is destroyed then (see finish).
      for (const job of jobs.splice(0)) setImmediate(job.callback, gatewayErrors.create('GW_CLOSED', 'the buffer is closed'), Buffer.alloc(0));
    },
  };
}
