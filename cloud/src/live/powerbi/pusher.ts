// Power BI behind the live output port: push datasets through the REST API (dataset and tables created
// ahead from the KPI and alert schemas, rows POSTed per table) or a streaming dataset's push URL (key in
// the URL, a bare array of rows). One sender keeps every documented limit on the client side, so a
// steady load never meets a 429:
//   ≤ rowsPerPost rows per POST, ≤ postsPerMinute POSTs per minute and ≤ rowsPerHour rows per hour
//   per dataset (sliding windows, with a margin), ≤ maxPending POSTs in flight.
// 429 pauses the dataset for Retry-After; 5xx and network errors are retried with backoff; any other
// 4xx is never retried, and its body is reported. When a limit would be crossed the data gets coarser
// (superseded window revisions first, then every 2nd/4th/… window of a KPI) and every row left out is
// counted in stats().dropped. Alerts are sent before KPI rows and are the last to go.
import { sleep, type Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';
import { outputTables, type LiveOutput, type OutputRow, type OutputStats, type OutputTable } from '../output.ts';
import type { TokenSource } from './token.ts';

export interface PowerBiLimits {
  rowsPerPost: number;
  postsPerMinute: number;
  maxPending: number;
  rowsPerHour: number;
  /** Rows queued at most; beyond it the oldest KPI rows go (counted). */
  maxQueuedRows: number;
}

/** The documented push dataset limits. */
export const POWERBI_LIMITS: PowerBiLimits = { rowsPerPost: 10_000, postsPerMinute: 120, maxPending: 5, rowsPerHour: 1_000_000, maxQueuedRows: 200_000 };

export const POWERBI_API = 'https://api.powerbi.com/v1.0/myorg';

interface Common {
  /** How often queued rows are sent. */
  flushEveryMs?: number | undefined;
  /** How long close() keeps sending what is queued; what is left then is counted as dropped. */
  closeTimeoutMs?: number | undefined;
  limits?: Partial<PowerBiLimits> | undefined;
  retry?: { initialMs?: number; maxMs?: number; attempts?: number } | undefined;
  fetch?: typeof fetch | undefined;
  log?: Log | undefined;
  now?: (() => number) | undefined;
}

export interface PowerBiPushOptions extends Common {
  mode: 'push';
  /** REST root, e.g. https://api.powerbi.com/v1.0/myorg (a local server in tests). */
  apiBase?: string | undefined;
  /** Workspace (group) id; without it, "My workspace" of the signed-in identity. */
  workspaceId?: string | undefined;
  datasetName: string;
  tokens: TokenSource;
}

export interface PowerBiStreamingOptions extends Common {
  mode: 'streaming';
  /** Table → the streaming dataset's push URL (it carries the key: keep it secret). */
  pushUrls: Readonly<Record<string, string>>;
}

interface Batch {
  table: string;
  rows: OutputRow[];
  attempt: number;
}

/** Power BI's error code in a response body, when there is one. */
function powerBiErrorCode(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}

const DEPRECATED_HINT =
  'this tenant no longer creates push or streaming datasets; existing datasets keep working, or send the live output to Microsoft Fabric Real-Time Intelligence instead (--output eventstream with the Eventstream Kafka endpoint connection string)';

export class PowerBiOutput implements LiveOutput {
  readonly name: string;
  readonly #o: PowerBiPushOptions | PowerBiStreamingOptions;
  readonly #limits: PowerBiLimits;
  readonly #fetch: typeof fetch;
  readonly #log: Log;
  readonly #now: () => number;
  readonly #queues = new Map<string, OutputRow[]>();
  readonly #postTimes: number[] = [];
  readonly #rowTimes: { at: number; rows: number }[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  readonly #stats: OutputStats & { superseded: number; coarsened: number } = { delivered: 0, dropped: 0, queued: 0, requests: 0, throttled: 0, retried: 0, failed: 0, superseded: 0, coarsened: 0 };
  #datasetId: string | undefined;
  #pausedUntil = 0;
  #loop: Promise<void> | undefined;
  #lastError: string | undefined;
  #retryQueue: Batch[] = [];

  constructor(options: PowerBiPushOptions | PowerBiStreamingOptions) {
    this.#o = options;
    this.name = options.mode === 'push' ? `powerbi push dataset ${options.datasetName}` : 'powerbi streaming datasets';
    this.#limits = { ...POWERBI_LIMITS, ...options.limits };
    if (this.#limits.rowsPerPost > POWERBI_LIMITS.rowsPerPost) throw cloudErrors.create('CLD_INVALID_OPTIONS', `powerbi: limits.rowsPerPost must be at most ${POWERBI_LIMITS.rowsPerPost}`);
    this.#fetch = options.fetch ?? fetch;
    this.#log = options.log ?? (() => undefined);
    this.#now = options.now ?? Date.now;
  }

  get datasetId(): string | undefined {
    return this.#datasetId;
  }

  lastError(): string | undefined {
    return this.#lastError;
  }

  async start(): Promise<void> {
    if (this.#o.mode === 'push') this.#datasetId = await this.#ensureDataset(this.#o);
    this.#loop = this.#pump();
  }

  write(table: string, rows: readonly OutputRow[]): void {
    if (rows.length === 0) return;
    if (this.#o.mode === 'streaming' && this.#o.pushUrls[table] === undefined) return;
    const q = this.#queues.get(table) ?? [];
    for (const row of rows) q.push(row);
    this.#queues.set(table, q);
    this.#bound();
  }

  async flush(): Promise<void> {
    // Until every queued row is sent or counted, and nothing is in flight.
    while ((this.#queuedRows() > 0 || this.#retryQueue.length > 0 || this.#inFlight.size > 0) && !this.#stop.signal.aborted) {
      this.#send();
      await Promise.race([...this.#inFlight, sleep(50)]);
    }
  }

  async close(): Promise<void> {
    const deadline = new AbortController();
    await Promise.race([this.flush(), sleep(this.#o.closeTimeoutMs ?? 10_000, { signal: deadline.signal })]);
    deadline.abort();
    this.#stop.abort();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight]);
    const left = this.#queuedRows() + this.#retryQueue.reduce((n, b) => n + b.rows.length, 0);
    if (left > 0) this.#log('warn', 'powerbi: closed with rows unsent (counted as dropped)', { rows: left });
    this.#stats.dropped += left;
    this.#queues.clear();
    this.#retryQueue = [];
  }

  stats(): OutputStats & { superseded: number; coarsened: number } {
    return { ...this.#stats, queued: this.#queuedRows() + this.#retryQueue.reduce((n, b) => n + b.rows.length, 0) };
  }

  #queuedRows(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  async #pump(): Promise<void> {
    const every = this.#o.flushEveryMs ?? 1_000;
    while (!this.#stop.signal.aborted) {
      this.#send();
      await sleep(Math.min(every, 250), { signal: this.#stop.signal });
    }
  }

  /** Starts as many POSTs as the limits allow now. */
  #send(): void {
    const now = this.#now();
    if (now < this.#pausedUntil) return;
    this.#coarsen(now);
    while (this.#inFlight.size < this.#limits.maxPending && this.#postsInLastMinute(now) < this.#limits.postsPerMinute) {
      const batch = this.#nextBatch(now);
      if (batch === undefined) return;
      this.#postTimes.push(now);
      this.#rowTimes.push({ at: now, rows: batch.rows.length });
      const run = this.#post(batch).finally(() => this.#inFlight.delete(run));
      this.#inFlight.add(run);
    }
  }

  // Margins keep our windows a little wider than the service's, so delays on the way never push it over.
  #postsInLastMinute(now: number): number {
    while (this.#postTimes.length > 0 && this.#postTimes[0]! <= now - 61_000) this.#postTimes.shift();
    return this.#postTimes.length;
  }

  #rowsInLastHour(now: number): number {
    while (this.#rowTimes.length > 0 && this.#rowTimes[0]!.at <= now - 3_610_000) this.#rowTimes.shift();
    return this.#rowTimes.reduce((n, r) => n + r.rows, 0);
  }

  #nextBatch(now: number): Batch | undefined {
    const retry = this.#retryQueue.shift();
    if (retry !== undefined) return retry;
    const budget = this.#limits.rowsPerHour - this.#rowsInLastHour(now);
    if (budget <= 0) return undefined;
    // Alerts first, then the table with the most rows waiting.
    const tables = [...this.#queues.entries()].filter(([, q]) => q.length > 0).sort(([a, qa], [b, qb]) => (a === 'alerts' ? -1 : b === 'alerts' ? 1 : qb.length - qa.length));
    const first = tables[0];
    if (first === undefined) return undefined;
    const [table, q] = first;
    const rows = q.splice(0, Math.min(this.#limits.rowsPerPost, budget));
    return { table, rows, attempt: 0 };
  }

  /** Keeps the queue within what the hour's budget and maxQueuedRows allow; counts what is left out. */
  #coarsen(now: number): void {
    // Superseded revisions of a window (a final re-emitted after a late event): only the latest matters.
    for (const [table, q] of this.#queues) {
      if (table === 'alerts' || q.length < 2) continue;
      const latest = new Map<string, number>();
      q.forEach((r, i) => latest.set(`${String(r['key'])}|${String(r['window_start'])}`, i));
      if (latest.size === q.length) continue;
      const kept = q.filter((r, i) => latest.get(`${String(r['key'])}|${String(r['window_start'])}`) === i);
      this.#stats.superseded += q.length - kept.length;
      this.#stats.dropped += q.length - kept.length;
      this.#queues.set(table, kept);
    }
    const budget = Math.max(0, this.#limits.rowsPerHour - this.#rowsInLastHour(now));
    // Coarser time resolution: keep every 2nd, 4th, … window of each KPI until the rows fit.
    for (let level = 2; this.#queuedRows() > budget && level <= 1024; level *= 2) {
      for (const [table, q] of this.#queues) {
        if (table === 'alerts') continue;
        const kept = q.filter((r) => {
          const start = Date.parse(String(r['window_start']));
          const size = Date.parse(String(r['window_end'])) - start;
          return size > 0 && Math.floor(start / size) % level === 0;
        });
        this.#stats.coarsened += q.length - kept.length;
        this.#stats.dropped += q.length - kept.length;
        this.#queues.set(table, kept);
      }
    }
  }

  #bound(): void {
    let over = this.#queuedRows() - this.#limits.maxQueuedRows;
    if (over <= 0) return;
    for (const [table, q] of [...this.#queues].sort(([a], [b]) => (a === 'alerts' ? 1 : b === 'alerts' ? -1 : 0))) {
      const n = Math.min(over, q.length);
      q.splice(0, n);
      this.#stats.dropped += n;
      over -= n;
      if (over <= 0 || table === 'alerts') break;
    }
  }

  async #post(batch: Batch): Promise<void> {
    const retry = { initialMs: 500, maxMs: 30_000, attempts: 6, ...this.#o.retry };
    this.#stats.requests++;
    let response: Response;
    try {
      response = await this.#request(batch);
    } catch (err) {
      return this.#retryLater(batch, retry, `network: ${errorMessage(err)}`);
    }
    if (response.ok) {
      await response.arrayBuffer().catch(() => undefined);
      this.#stats.delivered += batch.rows.length;
      return;
    }
    const body = await response.text().catch(() => '');
    if (response.status === 429) {
      this.#stats.throttled++;
      const after = Number(response.headers.get('retry-after'));
      this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + (Number.isFinite(after) && after > 0 ? after * 1000 : retry.initialMs));
      this.#retryQueue.unshift(batch);
      this.#log('warn', 'powerbi: throttled (429); pausing this dataset for Retry-After', { retryAfterS: after, table: batch.table });
      return;
    }
    if (response.status >= 500) return this.#retryLater(batch, retry, `HTTP ${response.status}: ${body.slice(0, 500)}`);
    if (response.status === 401 && this.#o.mode === 'push' && batch.attempt === 0) {
      // An expired or revoked token: once more with a fresh one.
      this.#o.tokens.invalidate();
      this.#retryQueue.unshift({ ...batch, attempt: 1 });
      return;
    }
    // Any other 4xx: the same request will fail again. Report Power BI's own words.
    this.#stats.failed += batch.rows.length;
    this.#stats.dropped += batch.rows.length;
    const code = powerBiErrorCode(body);
    const error =
      code === 'FeatureDeprecatedError'
        ? cloudErrors.create('CLD_POWERBI_DEPRECATED', `${DEPRECATED_HINT} (HTTP ${response.status}: ${body.slice(0, 500)})`)
        : cloudErrors.create('CLD_POWERBI_REQUEST', `POST rows to ${batch.table}: HTTP ${response.status}: ${body.slice(0, 1000)}`);
    this.#lastError = error.message;
    this.#log('error', 'powerbi: rows refused; not retried', { error: error.message, rows: batch.rows.length });
  }

  async #retryLater(batch: Batch, retry: { initialMs: number; maxMs: number; attempts: number }, why: string): Promise<void> {
    if (batch.attempt + 1 >= retry.attempts) {
      this.#stats.failed += batch.rows.length;
      this.#stats.dropped += batch.rows.length;
      this.#lastError = cloudErrors.create('CLD_POWERBI_UNAVAILABLE', `${batch.rows.length} rows of ${batch.table} after ${retry.attempts} attempts: ${why}`).message;
      this.#log('error', 'powerbi: giving up on a batch', { error: this.#lastError });
      return;
    }
    this.#stats.retried++;
    const delay = Math.min(retry.maxMs, retry.initialMs * 2 ** batch.attempt);
    await sleep(delay, { signal: this.#stop.signal });
    this.#retryQueue.push({ ...batch, attempt: batch.attempt + 1 });
  }

  async #request(batch: Batch): Promise<Response> {
    if (this.#o.mode === 'streaming') {
      const url = this.#o.pushUrls[batch.table]!;
      return this.#fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch.rows), signal: AbortSignal.timeout(30_000) });
    }
    const token = await this.#o.tokens.token();
    return this.#fetch(`${this.#datasetUrl(this.#o)}/${this.#datasetId ?? ''}/tables/${encodeURIComponent(batch.table)}/rows`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rows: batch.rows }),
      signal: AbortSignal.timeout(30_000),
    });
  }

  #datasetUrl(o: PowerBiPushOptions): string {
    const base = (o.apiBase ?? POWERBI_API).replace(/\/$/, '');
    return o.workspaceId === undefined ? `${base}/datasets` : `${base}/groups/${encodeURIComponent(o.workspaceId)}/datasets`;
  }

  /** Finds the dataset by name, or creates it with every table (basicFIFO keeps the newest 200,000 rows per table). */
  async #ensureDataset(o: PowerBiPushOptions): Promise<string> {
    const url = this.#datasetUrl(o);
    const headers = async () => ({ authorization: `Bearer ${await o.tokens.token()}`, 'content-type': 'application/json' });
    const list = await this.#fetch(url, { headers: await headers(), signal: AbortSignal.timeout(30_000) }).catch((err: unknown) => {
      throw cloudErrors.create('CLD_POWERBI_UNAVAILABLE', `listing datasets: ${errorMessage(err)}`, err);
    });
    const listBody = await list.text();
    if (!list.ok) throw this.#requestError('listing datasets', list.status, listBody);
    const found = (JSON.parse(listBody) as { value?: { id: string; name: string }[] }).value?.find((d) => d.name === o.datasetName);
    if (found !== undefined) {
      this.#log('info', 'powerbi: using the existing push dataset', { dataset: o.datasetName, id: found.id });
      return found.id;
    }
    const definition = { name: o.datasetName, defaultMode: 'Push', tables: outputTables().map((t: OutputTable) => ({ name: t.name, columns: t.columns })) };
    const created = await this.#fetch(`${url}?defaultRetentionPolicy=basicFIFO`, { method: 'POST', headers: await headers(), body: JSON.stringify(definition), signal: AbortSignal.timeout(30_000) });
    const body = await created.text();
    if (!created.ok) throw this.#requestError('creating the push dataset', created.status, body);
    const id = (JSON.parse(body) as { id?: string }).id;
    if (id === undefined) throw cloudErrors.create('CLD_POWERBI_REQUEST', `creating the push dataset: no id in ${body.slice(0, 200)}`);
    this.#log('info', 'powerbi: created the push dataset', { dataset: o.datasetName, id, tables: definition.tables.length });
    return id;
  }

  #requestError(what: string, status: number, body: string): Error {
    if (powerBiErrorCode(body) === 'FeatureDeprecatedError') return cloudErrors.create('CLD_POWERBI_DEPRECATED', `${what}: ${DEPRECATED_HINT} (HTTP ${status}: ${body.slice(0, 500)})`);
    if (status >= 500 || status === 429) return cloudErrors.create('CLD_POWERBI_UNAVAILABLE', `${what}: HTTP ${status}: ${body.slice(0, 500)}`);
    return cloudErrors.create('CLD_POWERBI_REQUEST', `${what}: HTTP ${status}: ${body.slice(0, 1000)}`);
  }
}

export function createPowerBiOutput(options: PowerBiPushOptions | PowerBiStreamingOptions): PowerBiOutput {
  return new PowerBiOutput(options);
}
