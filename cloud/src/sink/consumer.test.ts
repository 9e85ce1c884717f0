// A group coordinator that is not ready yet (loading after a broker start, or moving) is a condition
// kafkajs retries by restarting the consumer: the sink reports it as a retry, not as a crash.
import { describe, expect, it } from 'vitest';
import kafkajs from 'kafkajs';
import { createRequire } from 'node:module';
import { coordinatorNotReady } from './consumer.ts';

// kafkajs's own error of a protocol error code, as its broker responses raise them.
const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error') as { createErrorFromCode(code: number): Error };
const { KafkaJSProtocolError, KafkaJSNumberOfRetriesExceeded, KafkaJSConnectionError } = kafkajs;

describe('coordinatorNotReady', () => {
  it('names the coordinator condition, also behind the retries kafkajs gave up on', () => {
    const loading = new KafkaJSProtocolError(createErrorFromCode(14));
    expect(coordinatorNotReady(loading)).toBe('GROUP_LOAD_IN_PROGRESS');
    expect(coordinatorNotReady(new KafkaJSNumberOfRetriesExceeded(loading, { retryCount: 5, retryTime: 100 }))).toBe('GROUP_LOAD_IN_PROGRESS');
    expect(coordinatorNotReady(new KafkaJSProtocolError(createErrorFromCode(15)))).toBe('GROUP_COORDINATOR_NOT_AVAILABLE');
    expect(coordinatorNotReady(new KafkaJSProtocolError(createErrorFromCode(16)))).toBe('NOT_COORDINATOR_FOR_GROUP');
  });

  it('leaves every other error a crash', () => {
    expect(coordinatorNotReady(new KafkaJSProtocolError(createErrorFromCode(25)))).toBeUndefined(); // UNKNOWN_MEMBER_ID
    expect(coordinatorNotReady(new KafkaJSConnectionError('Connection error: ECONNREFUSED'))).toBeUndefined();
    expect(coordinatorNotReady(new Error('boom'))).toBeUndefined();
    expect(coordinatorNotReady(undefined)).toBeUndefined();
  });
});
