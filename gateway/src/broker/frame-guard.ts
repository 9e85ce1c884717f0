// The frame guard: cuts a connection whose MQTT header announces a packet over the limit, before the
// packet is read into memory.
import type { Duplex } from 'node:stream';

/**
 * aedes (through mqtt-packet) buffers a packet whole before anyone sees it, whatever length its
 * header announces. The scanner reads only the fixed headers of the byte stream and reports the
 * first one that announces a packet over the limit.
 */
export class FrameScanner {
  private readonly max: number;
  // State over the byte stream: header byte, then the remaining-length varint, then the body.
  private skip = 0;
  private phase: 'type' | 'length' = 'type';
  private length = 0;
  private multiplier = 1;

  constructor(max: number) {
    this.max = max;
  }

  /** The announced length of the first packet over the limit in this chunk, else -1. */
  scan(chunk: Buffer): number {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const byte = chunk[i++]!;
      if (this.phase === 'type') {
        this.phase = 'length';
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (byte & 0x80 && this.multiplier <= 128 ** 3) continue;
      this.phase = 'type';
      if (this.length + 5 > this.max) return this.length;
      this.skip = this.length;
    }
    return -1;
  }
}

export type GuardedStream = Duplex & { remoteAddressOfGuarded?: string | undefined };

/**
 * Guards a connection in place: its own `read` scans what it hands out, so aedes (which pulls with
 * `read()` on 'readable') never receives the bytes past an oversize header, and the connection is
 * destroyed. No stream is put in front of the socket: a Duplex layer per connection cost a push, a
 * read and a second write queue per packet, and a few kB of state per device.
 */
export function guardFrames(stream: Duplex, max: number, address: string | undefined, onOversize: (announced: number) => void): GuardedStream {
  const guarded = stream as GuardedStream;
  const scanner = new FrameScanner(max);
  const read = stream.read;
  guarded.read = function guardedRead(this: Duplex, size?: number): unknown {
    const chunk: unknown = read.call(this, size);
    if (!Buffer.isBuffer(chunk)) return chunk;
    const announced = scanner.scan(chunk);
    if (announced < 0) return chunk;
    onOversize(announced);
    this.destroy();
    return null;
  };
  if (address !== undefined) guarded.remoteAddressOfGuarded = address;
  return guarded;
}
