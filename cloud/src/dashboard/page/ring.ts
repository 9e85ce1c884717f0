// Fixed-size time series for the charts: memory does not grow with the length of a run.
export class SeriesRing {
  readonly capacity: number;
  private readonly columns: Float64Array[];
  private head = 0;
  private size = 0;

  constructor(capacity: number, series: number) {
    this.capacity = capacity;
    // Column 0 is time (seconds); the others are values (NaN: no value at that time).
    this.columns = Array.from({ length: series + 1 }, () => new Float64Array(capacity));
  }

  push(t: number, values: readonly (number | undefined)[]): void {
    const at = (this.head + this.size) % this.capacity;
    (this.columns[0] as Float64Array)[at] = t;
    for (let i = 1; i < this.columns.length; i++) (this.columns[i] as Float64Array)[at] = values[i - 1] ?? Number.NaN;
    if (this.size < this.capacity) this.size++;
    else this.head = (this.head + 1) % this.capacity;
  }

  /** The series in time order, as uPlot takes them (null where there is no value). */
  data(): (number | null)[][] {
    return this.columns.map((col) => {
      const out: (number | null)[] = new Array(this.size);
      for (let i = 0; i < this.size; i++) {
        const v = col[(this.head + i) % this.capacity] as number;
        out[i] = Number.isNaN(v) ? null : v;
      }
      return out;
    });
  }

  get length(): number {
    return this.size;
  }
}
