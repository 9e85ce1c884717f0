// Rows kept off the JavaScript heap until their file is written. Each column holds its values as UTF-8
// text joined by US (0x1F) in buffer chunks; the Parquet writer hands DuckDB each chunk and string_split
// gives the values back in order. Holding a file's rows as JS objects until the flush made the garbage
// collector copy and mark every one of them; a chunk is one object whatever it holds. Chunks of written
// files are reused: new external memory is what makes V8 run full collections, a reused chunk is not new.
// Escapes: RS (0x1E) alone is a null; a value's own RS and US are written as RS 0x02 and RS 0x01.
import type { CellValue, ColumnType } from '@city/protocol';

/** Column types a packed column holds: doubles are left out (their text would lose -0). */
export type PackedType = Exclude<ColumnType, 'double'>;

const US = 0x1f;
const RS = 0x1e;
const SPECIAL = /[\x1e\x1f]/;
const EMPTY = Buffer.alloc(0);
/** A column's first chunk is small (most columns of a file are), the next ones large. */
const FIRST_CHUNK = 16 * 1024;
const NEXT_CHUNK = 1024 * 1024;
/** Free chunks kept for reuse, per size: at most 8 MiB of small ones idle, and 64 MiB of large ones unless raised. */
const POOL: ReadonlyMap<number, { free: Buffer[]; keep: number }> = new Map([
  [FIRST_CHUNK, { free: [], keep: 512 }],
  [NEXT_CHUNK, { free: [], keep: 64 }],
]);

/**
 * Keeps up to `bytes` of free large chunks for reuse (never lowers the limit). A process that buffers
 * that much then takes chunks back instead of allocating them: V8 starts a full collection when new
 * external memory piles up ("external memory pressure"), and reused memory is not new.
 */
export function raiseChunkPool(bytes: number): void {
  const pool = POOL.get(NEXT_CHUNK);
  if (pool !== undefined) pool.keep = Math.max(pool.keep, Math.ceil(bytes / NEXT_CHUNK));
}

function takeChunk(size: number): Buffer {
  return POOL.get(size)?.free.pop() ?? Buffer.allocUnsafe(size);
}

function giveChunk(chunk: Buffer): void {
  const pool = POOL.get(chunk.length);
  if (pool !== undefined && pool.free.length < pool.keep) pool.free.push(chunk);
}

/** A filled chunk: its bytes up to `len`, holding `values` values. */
interface Chunk {
  buf: Buffer;
  len: number;
  values: number;
}
/** Up to this many UTF-16 units a string is written byte by byte when ASCII (a native call costs more). */
const SHORT_TEXT = 48;

export class PackedColumn {
  readonly name: string;
  readonly type: PackedType;
  /** Filled chunks, then the one being filled (#buf up to #len, holding #inChunk values). */
  #chunks: Chunk[] = [];
  #buf: Buffer = EMPTY;
  #len = 0;
  #inChunk = 0;
  /** Values in the chunks. */
  #written = 0;
  #released = false;
  /** While every value pushed equals the first, only this count grows (a file's topic, its gateway). */
  #same = 0;
  #first: CellValue = null;
  #constant: boolean;
  #nulls = false;
  #escaped = false;
  /** The first value the column's type cannot hold: reported when the file is written, as the cell writer does. */
  #error: TypeError | undefined;

  /** `constant`: look for a value shared by every row (a literal in the SQL instead of a value per row). */
  constructor(name: string, type: PackedType, options: { constant?: boolean } = {}) {
    this.name = name;
    this.type = type;
    this.#constant = options.constant ?? true;
  }

  get length(): number {
    return this.#written + this.#same;
  }

  /** Whether every value is the same: then `first` is it and nothing is in the buffer. */
  get constant(): boolean {
    return this.#constant && this.#same > 0;
  }

  get first(): CellValue {
    return this.#first;
  }

  get error(): TypeError | undefined {
    return this.#error;
  }

  push(value: CellValue): void {
    if (this.#constant) {
      if (this.#same === 0 && this.#written === 0 && this.#holds(value)) {
        this.#first = value;
        this.#same = 1;
        return;
      }
      if (value === this.#first) {
        this.#same++;
        return;
      }
      this.#constant = false;
      const n = this.#same;
      this.#same = 0;
      for (let i = 0; i < n; i++) this.#write(this.#first);
    }
    this.#write(value);
  }

  /** A text JSON.parse accepted (or JSON.stringify wrote): no raw control character, so no escape (a string column only). */
  pushJsonText(text: string): void {
    if (this.#constant || this.type !== 'string') return this.push(text);
    this.#separate(text.length * 3);
    this.#text(text);
  }

  /** Bytes of a UTF-8 text JSON.parse accepted: no raw control character, so no escape (a string column only). */
  pushJsonBytes(bytes: Uint8Array): void {
    if (this.#constant || this.type !== 'string') return this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    this.#separate(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /**
   * JSON.stringify's text of an object of strings, written without making it, when no key or value needs
   * a JSON escape (printable ASCII but for " and \); false, and nothing written, when one does.
   */
  pushPlainObject(object: Readonly<Record<string, string>>): boolean {
    if (this.#constant || this.type !== 'string') return false;
    let size = 2;
    for (const key in object) size += key.length + (object[key] as string).length + 6;
    // Written past the separator's place in one pass, checking as it goes; kept only if all of it was plain.
    this.#reserve(size);
    const buf = this.#buf;
    const start = this.#inChunk > 0 ? this.#len + 1 : this.#len;
    let at = start;
    buf[at++] = 0x7b;
    for (const key in object) {
      if (at !== start + 1) buf[at++] = 0x2c;
      buf[at++] = 0x22;
      at = writePlain(buf, at, key);
      if (at < 0) return false;
      buf[at++] = 0x22;
      buf[at++] = 0x3a;
      buf[at++] = 0x22;
      at = writePlain(buf, at, object[key] as string);
      if (at < 0) return false;
      buf[at++] = 0x22;
    }
    buf[at++] = 0x7d;
    this.#separate(0);
    this.#len = at;
    return true;
  }

  /** Makes room for a value of up to `room` bytes, and writes the separator before it. */
  #separate(room: number): void {
    this.#reserve(room);
    if (this.#inChunk > 0) this.#buf[this.#len++] = US;
    this.#inChunk++;
    this.#written++;
  }

  /** Makes room for a separator and a value of up to `room` bytes in the chunk being filled. */
  #reserve(room: number): void {
    if (this.#len + room + 1 > this.#buf.length) {
      if (this.#released) throw new Error(`packed column ${this.name} was released`);
      if (this.#inChunk > 0) this.#chunks.push({ buf: this.#buf, len: this.#len, values: this.#inChunk });
      else if (this.#buf !== EMPTY) giveChunk(this.#buf);
      const size = this.#buf === EMPTY && this.#chunks.length === 0 ? FIRST_CHUNK : NEXT_CHUNK;
      this.#buf = room + 1 > size ? Buffer.allocUnsafe(room + 1) : takeChunk(size);
      this.#len = 0;
      this.#inChunk = 0;
    }
  }

  /** Writes `text` as UTF-8 at the end (room made already): short ASCII byte by byte, the rest by the encoder. */
  #text(text: string): void {
    const n = text.length;
    if (n <= SHORT_TEXT) {
      const buf = this.#buf;
      const at = this.#len;
      let i = 0;
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      if (i === n) {
        this.#len = at + n;
        return;
      }
    }
    this.#len += this.#buf.write(text, this.#len, 'utf8');
  }

  /** Whether `value` may be the column's one value (a literal in the SQL). */
  #holds(value: CellValue): boolean {
    switch (this.type) {
      case 'string':
        // A NUL ends a SQL string literal early in DuckDB's parser: such a text is never the literal.
        return value === null || (typeof value === 'string' && !value.includes('\u0000'));
      case 'boolean':
        return value === null || typeof value === 'boolean';
      default:
        return value === null || Number.isSafeInteger(value);
    }
  }

  #write(value: CellValue): void {
    if (value === null) {
      this.#nulls = true;
      this.#separate(1);
      this.#buf[this.#len++] = RS;
      return;
    }
    switch (this.type) {
      case 'string': {
        if (typeof value !== 'string') return this.#wrong(value);
        let text = value;
        if (SPECIAL.test(text)) {
          this.#escaped = true;
          text = text.replace(/\x1e/g, '\x1e\x02').replace(/\x1f/g, '\x1e\x01');
        }
        this.#separate(text.length * 3);
        this.#text(text);
        break;
      }
      case 'boolean':
        if (typeof value !== 'boolean') return this.#wrong(value);
        this.#separate(5);
        this.#text(value ? 'true' : 'false');
        break;
      case 'int64':
      case 'timestamp':
        // Integers and epoch milliseconds: safe integers, exact as decimal text.
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) return this.#wrong(value);
        this.#separate(17);
        this.#int(value);
        break;
    }
  }

  /** A safe integer's decimal digits, without making its string. */
  #int(value: number): void {
    const buf = this.#buf;
    let v = value;
    if (v < 0) {
      buf[this.#len++] = 0x2d;
      v = -v;
    }
    let digits = 1;
    for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
    let at = this.#len + digits;
    this.#len = at;
    do {
      const q = Math.floor(v / 10);
      buf[--at] = 0x30 + (v - q * 10);
      v = q;
    } while (v > 0);
  }

  #wrong(value: CellValue): void {
    this.#error ??= new TypeError(`column ${this.name} (${this.type}) cannot hold ${JSON.stringify(value)}`);
    // Keeps the row count right; the file is refused at write time anyway.
    this.#separate(1);
    this.#buf[this.#len++] = RS;
    this.#nulls = true;
  }

  /** The values as UTF-8 bytes joined by US, a part per chunk, each holding whole values (none for a constant column). */
  parts(): Uint8Array[] {
    if (this.#released) throw new Error(`packed column ${this.name} was released`);
    const parts = this.#chunks.map((c) => c.buf.subarray(0, c.len));
    if (this.#inChunk > 0) parts.push(this.#buf.subarray(0, this.#len));
    return parts;
  }

  /** Gives the chunks back for other columns to reuse; the column holds nothing after. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const c of this.#chunks) giveChunk(c.buf);
    if (this.#buf !== EMPTY) giveChunk(this.#buf);
    this.#chunks = [];
    this.#buf = EMPTY;
    this.#len = 0;
  }

  /** SQL turning `ref`, one value of the split text, back into the VARCHAR value (or NULL). */
  sqlText(ref: string): string {
    let expr = ref;
    if (this.#nulls) expr = `nullif(${expr}, chr(30))`;
    if (this.#escaped) expr = `replace(replace(${expr}, chr(30) || chr(1), chr(31)), chr(30) || chr(2), chr(30))`;
    return expr;
  }

  /** The values as cells again, in JavaScript (for a write that cannot go through DuckDB's reading). */
  values(): CellValue[] {
    if (this.constant) return new Array<CellValue>(this.#same).fill(this.#first);
    if (this.#written === 0) return [];
    const parts = this.parts().flatMap((part) => Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString('utf8').split('\x1f'));
    const out: CellValue[] = new Array(parts.length);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      if (part === '\x1e') {
        out[i] = null;
        continue;
      }
      const text = this.#escaped ? part.replace(/\x1e\x01/g, '\x1f').replace(/\x1e\x02/g, '\x1e') : part;
      out[i] = this.type === 'string' ? text : this.type === 'boolean' ? text === 'true' : Number(text);
    }
    return out;
  }
}

/** Writes `text` at `at` if JSON writes it as its own characters (printable ASCII but for " and \): the end, or -1. */
function writePlain(buf: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    buf[at + i] = c;
  }
  return at + text.length;
}

/** A file's rows as packed columns by column name (table columns, or an event file's texts and cells). */
export class PackedRows {
  readonly columns: readonly PackedColumn[];
  readonly #byName: Map<string, PackedColumn>;

  constructor(columns: readonly PackedColumn[]) {
    this.columns = columns;
    this.#byName = new Map(columns.map((c) => [c.name, c]));
  }

  get rows(): number {
    return this.columns[0]?.length ?? 0;
  }

  column(name: string): PackedColumn | undefined {
    return this.#byName.get(name);
  }

  /** After the file is written: its chunks go back for reuse. */
  release(): void {
    for (const c of this.columns) c.release();
  }

  /** Appends a row given as cells in column order. */
  pushRow(row: readonly CellValue[]): void {
    const columns = this.columns;
    for (let i = 0; i < columns.length; i++) (columns[i] as PackedColumn).push(row[i] ?? null);
  }
}
