// A local stand-in for the Power BI REST API (push datasets) and streaming push URLs, following the
// documented request and response shapes, that enforces the documented limits: at most 10,000 rows
// per POST (400), 120 POSTs per minute per dataset, 5 pending POSTs and 1,000,000 rows per hour per
// dataset (429 with Retry-After). Rows are checked against the table's column types.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PowerBiServerLimits {
  rowsPerPost: number;
  postsPerMinute: number;
  maxPending: number;
  rowsPerHour: number;
}

interface Column {
  name: string;
  dataType: string;
}
interface Dataset {
  id: string;
  name: string;
  defaultRetentionPolicy: string;
  tables: Map<string, Column[]>;
  rows: Map<string, Record<string, unknown>[]>;
  posts: number[];
  rowTimes: { at: number; rows: number }[];
  pending: number;
}

export interface PowerBiServer {
  readonly url: string;
  /** REST root: `${url}/v1.0/myorg`. */
  readonly apiBase: string;
  readonly token: string;
  datasets(): { id: string; name: string; defaultRetentionPolicy: string; tables: Record<string, Column[]> }[];
  rows(datasetName: string, table: string): Record<string, unknown>[];
  /** Creates a streaming dataset with one table; returns its push URL (key in the URL). */
  streamingDataset(name: string, columns: Column[]): string;
  /** The next `count` row POSTs answer this (a 5xx, a 4xx with a body, a 429…). */
  failNext(count: number, status: number, body?: string, headers?: Record<string, string>): void;
  /** Dataset creation answers FeatureDeprecatedError (a tenant past the deadline). */
  refuseNewDatasets(on: boolean): void;
  readonly counts: { posts: number; throttled: number; tooLarge: number; badRows: number; maxPendingSeen: number; unauthorized: number };
  close(): Promise<void>;
}

const TYPES = new Set(['Int64', 'Double', 'Boolean', 'DateTime', 'String']);

function typeOk(type: string, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  switch (type) {
    case 'Int64':
      return typeof v === 'number' && Number.isInteger(v);
    case 'Double':
      return typeof v === 'number';
    case 'Boolean':
      return typeof v === 'boolean';
    case 'DateTime':
      return typeof v === 'string' && !Number.isNaN(Date.parse(v));
    default:
      return typeof v === 'string';
  }
}

export async function startPowerBiServer(options: { limits?: Partial<PowerBiServerLimits>; token?: string; latencyMs?: number } = {}): Promise<PowerBiServer> {
  const limits: PowerBiServerLimits = { rowsPerPost: 10_000, postsPerMinute: 120, maxPending: 5, rowsPerHour: 1_000_000, ...options.limits };
  const token = options.token ?? 'test-token';
  const datasets = new Map<string, Dataset>();
  const streamingKeys = new Map<string, string>();
  const failures: { status: number; body: string; headers: Record<string, string> }[] = [];
  let refuse = false;
  let n = 0;
  const counts = { posts: 0, throttled: 0, tooLarge: 0, badRows: 0, maxPendingSeen: 0, unauthorized: 0 };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    send(res, status, { error: { code, message } }, headers);
  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  /** The limits of one dataset for a POST of `rows` rows; undefined when it may go ahead. */
  const throttle = (d: Dataset, rows: number, now: number): number | undefined => {
    while (d.posts.length > 0 && d.posts[0]! <= now - 60_000) d.posts.shift();
    while (d.rowTimes.length > 0 && d.rowTimes[0]!.at <= now - 3_600_000) d.rowTimes.shift();
    if (d.pending >= limits.maxPending) return 1;
    if (d.posts.length >= limits.postsPerMinute) return Math.max(1, Math.ceil((d.posts[0]! + 60_000 - now) / 1000));
    const hour = d.rowTimes.reduce((s, r) => s + r.rows, 0);
    if (hour + rows > limits.rowsPerHour) return Math.max(1, Math.ceil((d.rowTimes[0]!.at + 3_600_000 - now) / 1000));
    return undefined;
  };

  const addRows = async (res: ServerResponse, d: Dataset, table: string, rows: unknown) => {
    counts.posts++;
    const failure = failures.shift();
    if (failure !== undefined) return send(res, failure.status, failure.body === '' ? undefined : JSON.parse(failure.body), failure.headers);
    const columns = d.tables.get(table);
    if (columns === undefined) return error(res, 404, 'ItemNotFound', `table ${table} not found`);
    if (!Array.isArray(rows)) return error(res, 400, 'InvalidRequest', 'rows must be an array');
    if (rows.length > limits.rowsPerPost) {
      counts.tooLarge++;
      return error(res, 400, 'RequestTooLarge', `at most ${limits.rowsPerPost} rows per POST, got ${rows.length}`);
    }
    const now = Date.now();
    const wait = throttle(d, rows.length, now);
    if (wait !== undefined) {
      counts.throttled++;
      return error(res, 429, 'TooManyRequests', 'rate limit', { 'retry-after': String(wait) });
    }
    for (const row of rows as Record<string, unknown>[]) {
      for (const [k, v] of Object.entries(row)) {
        const c = columns.find((x) => x.name === k);
        if (c === undefined || !typeOk(c.dataType, v)) {
          counts.badRows++;
          return error(res, 400, 'InvalidRequest', `row value ${k}=${JSON.stringify(v)} does not fit the table ${table}`);
        }
      }
    }
    d.posts.push(now);
    d.rowTimes.push({ at: now, rows: rows.length });
    d.pending++;
    counts.maxPendingSeen = Math.max(counts.maxPendingSeen, d.pending);
    try {
      if (options.latencyMs !== undefined) await new Promise((r) => setTimeout(r, options.latencyMs));
      const kept = d.rows.get(table) ?? [];
      kept.push(...(rows as Record<string, unknown>[]));
      // basicFIFO keeps the newest 200,000 rows per table.
      if (d.defaultRetentionPolicy === 'basicFIFO' && kept.length > 200_000) kept.splice(0, kept.length - 200_000);
      d.rows.set(table, kept);
      send(res, 200, {});
    } finally {
      d.pending--;
    }
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const body = await readBody(req);
      // Streaming push URL: /beta/<tenant>/datasets/<id>/rows?key=…, a bare array, no bearer token.
      const streaming = /^\/beta\/[^/]+\/datasets\/([^/]+)\/rows$/.exec(url.pathname);
      if (streaming !== null && req.method === 'POST') {
        const id = streaming[1]!;
        const d = datasets.get(id);
        if (d === undefined || streamingKeys.get(id) !== url.searchParams.get('key')) return error(res, 403, 'Forbidden', 'bad key');
        return addRows(res, d, [...d.tables.keys()][0]!, JSON.parse(body));
      }
      if (req.headers.authorization !== `Bearer ${token}`) {
        counts.unauthorized++;
        return error(res, 401, 'TokenExpired', 'Access token has expired or is not valid');
      }
      const m = /^\/v1\.0\/myorg(?:\/groups\/([^/]+))?\/datasets(?:\/([^/]+)\/tables\/([^/]+)\/rows)?$/.exec(url.pathname);
      if (m === null) return error(res, 404, 'NotFound', `no route ${req.method} ${url.pathname}`);
      const [, , datasetId, table] = m;
      if (datasetId === undefined && req.method === 'GET') {
        return send(res, 200, { value: [...datasets.values()].map((d) => ({ id: d.id, name: d.name, defaultRetentionPolicy: d.defaultRetentionPolicy })) });
      }
      if (datasetId === undefined && req.method === 'POST') {
        if (refuse) return error(res, 400, 'FeatureDeprecatedError', 'Creating push datasets is no longer supported');
        const def = JSON.parse(body) as { name?: string; defaultMode?: string; tables?: { name: string; columns: Column[] }[] };
        if (typeof def.name !== 'string' || def.defaultMode !== 'Push' || !Array.isArray(def.tables) || def.tables.length === 0) {
          return error(res, 400, 'InvalidRequest', 'a push dataset needs name, defaultMode Push and tables');
        }
        for (const t of def.tables) {
          for (const c of t.columns) if (!TYPES.has(c.dataType)) return error(res, 400, 'InvalidRequest', `column ${t.name}.${c.name}: unknown dataType ${c.dataType}`);
        }
        const id = `ds-${++n}`;
        const policy = url.searchParams.get('defaultRetentionPolicy') ?? 'None';
        datasets.set(id, { id, name: def.name, defaultRetentionPolicy: policy, tables: new Map(def.tables.map((t) => [t.name, t.columns])), rows: new Map(), posts: [], rowTimes: [], pending: 0 });
        return send(res, 201, { id, name: def.name, defaultRetentionPolicy: policy });
      }
      if (datasetId !== undefined && table !== undefined && req.method === 'POST') {
        const d = datasets.get(datasetId);
        if (d === undefined) return error(res, 404, 'ItemNotFound', `dataset ${datasetId} not found`);
        const parsed = JSON.parse(body) as { rows?: unknown };
        return addRows(res, d, decodeURIComponent(table), parsed.rows);
      }
      return error(res, 405, 'MethodNotAllowed', `${req.method} ${url.pathname}`);
    })().catch((err: unknown) => error(res, 500, 'InternalError', String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    apiBase: `${url}/v1.0/myorg`,
    token,
    counts,
    datasets: () => [...datasets.values()].map((d) => ({ id: d.id, name: d.name, defaultRetentionPolicy: d.defaultRetentionPolicy, tables: Object.fromEntries(d.tables) })),
    rows: (name, table) => [...datasets.values()].find((d) => d.name === name)?.rows.get(table) ?? [],
    streamingDataset(name, columns) {
      const id = `sds-${++n}`;
      const key = `k${Math.random().toString(36).slice(2)}`;
      datasets.set(id, { id, name, defaultRetentionPolicy: 'None', tables: new Map([[name, columns]]), rows: new Map(), posts: [], rowTimes: [], pending: 0 });
      streamingKeys.set(id, key);
      return `${url}/beta/tenant-1/datasets/${id}/rows?key=${key}`;
    },
    failNext(count, status, body = '', headers = {}) {
      for (let i = 0; i < count; i++) failures.push({ status, body, headers });
    },
    refuseNewDatasets(on) {
      refuse = on;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
