// Retries for AWS calls (Glue, Athena): capped exponential backoff on throttling and server errors.
// Its own module so the adapters and the catalog factory do not import each other.

export interface RetryPolicy {
  /** Attempts in total, at least 1. */
  attempts: number;
  initialMs: number;
  maxMs: number;
}

export const AWS_RETRY_DEFAULTS: RetryPolicy = { attempts: 6, initialMs: 200, maxMs: 10_000 };

/** JSON Schema of a RetryPolicy option, shared by the AWS adapters' option schemas. */
export const RETRY_POLICY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    attempts: { type: 'integer', minimum: 1, maximum: 100 },
    initialMs: { type: 'integer', minimum: 0, maximum: 600_000 },
    maxMs: { type: 'integer', minimum: 0, maximum: 600_000 },
  },
} as const;

const RETRYABLE_AWS_ERRORS = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'InternalServiceException',
  'InternalServerException',
  'ServiceUnavailableException',
  'ResourceNumberLimitExceededException',
  'ConcurrentModificationException',
  'OperationTimeoutException',
]);

export function isRetryableAwsError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof e.name === 'string' && RETRYABLE_AWS_ERRORS.has(e.name)) return true;
  if (e.$retryable !== undefined && e.$retryable !== null) return true;
  const status = e.$metadata?.httpStatusCode;
  return typeof status === 'number' && (status === 429 || status >= 500);
}

export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
}

/** Not unref'd on purpose: someone awaits it, and a CLI polling Athena must not exit mid-wait. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `call`, retrying retryable AWS errors with capped exponential backoff; rethrows the last error. */
export async function withAwsRetry<T>(policy: RetryPolicy, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt + 1 >= policy.attempts || !isRetryableAwsError(err)) throw err;
      await sleep(backoffMs(policy, attempt));
    }
  }
}

/** Which catalog the sink (or a tool) registers in: the local one beside the lake, or AWS Glue. */
