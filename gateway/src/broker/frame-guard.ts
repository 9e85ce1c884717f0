// The frame guard: a pass-through in front of aedes that cuts a connection whose MQTT header announces
// a packet over the limit, before the packet is read into memory.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * aedes (through mqtt-packet) buffers a packet whole before anyone sees it, whatever length its
 * header announces. This pass-through reads only the fixed headers and cuts the connection as soon
 * as a header announces a packet over the limit, so a giant publish never reaches memory.
 */
export class FrameGuard extends Duplex {
  readonly remoteAddressOfGuarded: string | undefined;
  private readonly inner: Duplex;
  private readonly max: number;
  private readonly onOversize: (announced: number) => void;
  // Parser state over the byte stream: header byte, then the remaining-length varint, then the body.
  private skip = 0;
  private phase: 'type' | 'length' = 'type';
  private length = 0;
  private multiplier = 1;

  constructor(inner: Duplex, max: number, address: string | undefined, onOversize: (announced: number) => void) {
    super({ allowHalfOpen: false });
    this.inner = inner;
    this.max = max;
    this.onOversize = onOversize;
    this.remoteAddressOfGuarded = address ?? (inner as Partial<Socket>).remoteAddress;
    inner.on('data', (chunk: Buffer) => {
      if (!this.scan(chunk)) return;
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => this.destroy());
    inner.pause();
  }

  /** False once the connection was cut. */
  private scan(chunk: Buffer): boolean {
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
      if (this.length + 5 > this.max) {
        this.onOversize(this.length);
        this.destroy();
        return false;
      }
      this.skip = this.length;
    }
    return true;
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.inner.write(chunk, encoding, callback);
  }

  // PUBACKs queued while a write is pending leave in one socket write, not one system call each.
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.inner.write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.inner.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.inner.destroy();
    callback(error);
  }
}
