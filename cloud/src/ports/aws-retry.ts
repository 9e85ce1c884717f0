// Retries for AWS calls (Glue, Athena), one place for every adapter: capped exponential backoff on
// throttling and server errors. The SDK retries too; this covers longer throttling spells.
import { Type, type Static } from '@sinclair/typebox';
import { sleep } from '@city/protocol';

/** A retry policy option of the AWS adapters' schemas. */
export const RetryPolicySchema = Type.Object(
  {
    /** Attempts in total, at least 1. */
    attempts: Type.Integer({ minimum: 1, maximum: 100 }),
    initialMs: Type.Integer({ minimum: 0, maximum: 600_000 }),
    maxMs: Type.Integer({ minimum: 0, maximum: 600_000 }),
  },
  { additionalProperties: false },
);

export type RetryPolicy = Static<typeof RetryPolicySchema>;

export const AWS_RETRY_DEFAULTS: RetryPolicy = { attempts: 6, initialMs: 200, maxMs: 10_000 };

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

/** The AWS SDK's name of an error (e.g. EntityNotFoundException), or 'Error'. */
export function awsErrorName(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string' ? (err as Error).name : 'Error';
}

export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
}

/** Waits before retry `attempt` (0-based). Not unref'd: a CLI polling Athena must not exit mid-wait. */
export function backoff(policy: RetryPolicy, attempt: number): Promise<void> {
  return sleep(backoffMs(policy, attempt));
}

/** Runs `call`, retrying retryable AWS errors with capped exponential backoff; rethrows the last error. */
export async function withAwsRetry<T>(policy: RetryPolicy, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt + 1 >= policy.attempts || !isRetryableAwsError(err)) throw err;
      await backoff(policy, attempt);
    }
  }
}
