// The seed's Lambda: on an EventBridge schedule, pushes the KPI windows and alerts that reached the
// Redshift warehouse since its last run to a Power BI push dataset (see sync.ts for the watermark rule).
// Configuration comes from the environment (README "Deploy the Power BI Lambda"); the app registration's
// client secret is read from Secrets Manager through the AWS Parameters and Secrets Lambda Extension (a
// local HTTP endpoint: no SDK client in the bundle), or given as POWERBI_CLIENT_SECRET for local runs.
import { Type, type Static } from '@sinclair/typebox';
import type { RedshiftDataClient } from '@aws-sdk/client-redshift-data';
import { defineOptions, jsonLog, type Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';
import { createRedshiftWarehouse } from '../../warehouse/redshift.ts';
import { createPowerBiOutput, POWERBI_API } from '../powerbi/pusher.ts';
import { cachedTokenSource, entraCredential, type TokenSource } from '../powerbi/token.ts';
import { syncWarehouseToPowerBi, type TableSync } from './sync.ts';
import { ensureLiveWarehouseTables } from './tables.ts';

const Str = (o: object = {}) => Type.Optional(Type.String({ minLength: 1, ...o }));

export const LambdaEnvSchema = Type.Object(
  {
    REDSHIFT_WORKGROUP: Str(),
    REDSHIFT_CLUSTER: Str(),
    REDSHIFT_DATABASE: Type.String({ minLength: 1 }),
    REDSHIFT_SECRET_ARN: Str({ pattern: '^arn:' }),
    REDSHIFT_DB_USER: Str(),
    WAREHOUSE_SCHEMA: Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$' }),
    /** "true": create kpi_windows, alerts and powerbi_watermark when missing. */
    WAREHOUSE_CREATE_TABLES: Type.Union([Type.Literal('true'), Type.Literal('false')]),
    POWERBI_WORKSPACE_ID: Str(),
    POWERBI_DATASET: Type.String({ minLength: 1 }),
    POWERBI_API: Type.String({ pattern: '^https?://' }),
    POWERBI_TENANT_ID: Str(),
    POWERBI_CLIENT_ID: Str(),
    POWERBI_CLIENT_SECRET_ARN: Str({ pattern: '^arn:' }),
    POWERBI_CLIENT_SECRET: Str(),
    /** Rows read per source table per run. */
    SYNC_MAX_ROWS: Type.String({ pattern: '^[1-9][0-9]{0,6}$' }),
    AWS_REGION: Str(),
  },
  // Lambda's own variables (AWS_*, LAMBDA_*, _HANDLER…) are in the environment too: pick, do not refuse.
  { additionalProperties: true },
);
export type LambdaEnv = Static<typeof LambdaEnvSchema>;

const envOptions = defineOptions({
  schema: LambdaEnvSchema,
  defaults: { WAREHOUSE_SCHEMA: 'public', WAREHOUSE_CREATE_TABLES: 'false', POWERBI_API: POWERBI_API, SYNC_MAX_ROWS: '50000' },
  check: (e) => {
    if ((e.REDSHIFT_WORKGROUP === undefined) === (e.REDSHIFT_CLUSTER === undefined)) return 'set exactly one of REDSHIFT_WORKGROUP and REDSHIFT_CLUSTER';
    return undefined;
  },
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', `powerbi lambda environment: ${detail}`),
});

/** Only the variables the schema names (Lambda's own are left out). */
export function lambdaEnv(env: Readonly<Record<string, string | undefined>>): LambdaEnv {
  const picked: Record<string, string> = {};
  for (const name of Object.keys(LambdaEnvSchema.properties)) {
    const v = env[name];
    if (v !== undefined && v !== '') picked[name] = v;
  }
  return envOptions.resolve(picked);
}

export interface LambdaDeps {
  env?: Readonly<Record<string, string | undefined>>;
  /** Data API client (a stand-in in tests); by default one per warm container. */
  dataClient?: RedshiftDataClient;
  /** Power BI tokens (tests); by default Entra client credentials. */
  tokens?: TokenSource;
  fetch?: typeof fetch;
  log?: Log;
  /** Power BI retry policy (the default suits a run of a few minutes). */
  retry?: { initialMs?: number; maxMs?: number; attempts?: number };
}

/** The part of Lambda's context the handler uses. */
export interface LambdaContext {
  getRemainingTimeInMillis?: () => number;
  awsRequestId?: string;
}

export interface LambdaResult {
  tables: TableSync[];
}

/** The client secret from Secrets Manager through the Parameters and Secrets Extension (plain, or JSON with clientSecret). */
export async function clientSecretFromExtension(secretArn: string, env: Readonly<Record<string, string | undefined>>, doFetch: typeof fetch = fetch): Promise<string> {
  const port = env['PARAMETERS_SECRETS_EXTENSION_HTTP_PORT'] ?? '2773';
  const url = `http://localhost:${port}/secretsmanager/get?secretId=${encodeURIComponent(secretArn)}`;
  let response: Response;
  try {
    response = await doFetch(url, { headers: { 'X-Aws-Parameters-Secrets-Token': env['AWS_SESSION_TOKEN'] ?? '' }, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw cloudErrors.create('CLD_POWERBI_TOKEN', `reading the client secret ${secretArn}: the Parameters and Secrets Lambda Extension did not answer (is its layer added?): ${errorMessage(err)}`, err);
  }
  const body = await response.text();
  if (!response.ok) throw cloudErrors.create('CLD_POWERBI_TOKEN', `reading the client secret ${secretArn}: HTTP ${response.status}: ${body.slice(0, 300)}`);
  const secret = (JSON.parse(body) as { SecretString?: string }).SecretString;
  if (secret === undefined || secret === '') throw cloudErrors.create('CLD_POWERBI_TOKEN', `the secret ${secretArn} has no SecretString`);
  if (!secret.trimStart().startsWith('{')) return secret;
  const inner = (JSON.parse(secret) as { clientSecret?: unknown }).clientSecret;
  if (typeof inner !== 'string' || inner === '') throw cloudErrors.create('CLD_POWERBI_TOKEN', `the secret ${secretArn} is JSON without a "clientSecret" string`);
  return inner;
}

let warmTokens: TokenSource | undefined;

async function entraTokens(e: LambdaEnv, env: Readonly<Record<string, string | undefined>>, doFetch: typeof fetch): Promise<TokenSource> {
  if (warmTokens !== undefined) return warmTokens;
  if (e.POWERBI_TENANT_ID === undefined || e.POWERBI_CLIENT_ID === undefined) throw cloudErrors.create('CLD_INVALID_OPTIONS', 'powerbi lambda environment: POWERBI_TENANT_ID and POWERBI_CLIENT_ID are required');
  const secret = e.POWERBI_CLIENT_SECRET ?? (e.POWERBI_CLIENT_SECRET_ARN === undefined ? undefined : await clientSecretFromExtension(e.POWERBI_CLIENT_SECRET_ARN, env, doFetch));
  if (secret === undefined) throw cloudErrors.create('CLD_INVALID_OPTIONS', 'powerbi lambda environment: set POWERBI_CLIENT_SECRET_ARN (or POWERBI_CLIENT_SECRET)');
  // Kept across warm invocations: the cached token is reused until shortly before it expires.
  warmTokens = cachedTokenSource(await entraCredential({ tenantId: e.POWERBI_TENANT_ID, clientId: e.POWERBI_CLIENT_ID, clientSecret: secret }));
  return warmTokens;
}

/** A handler bound to its dependencies; `handler` below is the one Lambda calls. */
export function createHandler(deps: LambdaDeps = {}) {
  return async (_event: unknown, context: LambdaContext = {}): Promise<LambdaResult> => {
    const env = deps.env ?? process.env;
    const e = lambdaEnv(env);
    const log = deps.log ?? jsonLog('info');
    const doFetch = deps.fetch ?? fetch;
    const warehouse = createRedshiftWarehouse({
      database: e.REDSHIFT_DATABASE,
      schema: e.WAREHOUSE_SCHEMA,
      ...(e.REDSHIFT_WORKGROUP === undefined ? {} : { workgroupName: e.REDSHIFT_WORKGROUP }),
      ...(e.REDSHIFT_CLUSTER === undefined ? {} : { clusterIdentifier: e.REDSHIFT_CLUSTER }),
      ...(e.REDSHIFT_SECRET_ARN === undefined ? {} : { secretArn: e.REDSHIFT_SECRET_ARN }),
      ...(e.REDSHIFT_DB_USER === undefined ? {} : { dbUser: e.REDSHIFT_DB_USER }),
      ...(e.AWS_REGION === undefined ? {} : { region: e.AWS_REGION }),
      ...(deps.dataClient === undefined ? {} : { client: deps.dataClient }),
    });
    // Stop waiting for Power BI 10 s before Lambda would kill the run, so the outcome is logged.
    const remaining = context.getRemainingTimeInMillis?.();
    const stop = new AbortController();
    const deadline =
      remaining === undefined
        ? undefined
        : new Promise<void>((resolve) => {
            const t = setTimeout(resolve, Math.max(1_000, remaining - 10_000));
            stop.signal.addEventListener('abort', () => clearTimeout(t));
          });
    let output: ReturnType<typeof createPowerBiOutput> | undefined;
    try {
      if (e.WAREHOUSE_CREATE_TABLES === 'true') await ensureLiveWarehouseTables(warehouse);
      output = createPowerBiOutput({
        mode: 'push',
        apiBase: e.POWERBI_API,
        datasetName: e.POWERBI_DATASET,
        ...(e.POWERBI_WORKSPACE_ID === undefined ? {} : { workspaceId: e.POWERBI_WORKSPACE_ID }),
        tokens: deps.tokens ?? (await entraTokens(e, env, doFetch)),
        fetch: doFetch,
        log,
        closeTimeoutMs: 1_000,
        ...(deps.retry === undefined ? {} : { retry: deps.retry }),
      });
      await output.start();
      const tables = await syncWarehouseToPowerBi({ warehouse, output, maxRows: Number(e.SYNC_MAX_ROWS), deadline, log });
      log('info', 'powerbi lambda: run done', { requestId: context.awsRequestId, tables });
      return { tables };
    } finally {
      stop.abort();
      await output?.close();
      await warehouse.close();
    }
  };
}

export const handler = createHandler();
