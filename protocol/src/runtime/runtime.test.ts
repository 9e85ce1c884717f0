import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { CityError, defineErrors, exitCodeOf } from '../errors.ts';
import { HEADERS, headerText, readRecordHeaders, recordHeaders } from '../headers.ts';
import type { Problem } from '../validate.ts';
import { parseCommandLine } from './cli.ts';
import { createLifecycle, type LifecycleErrors } from './lifecycle.ts';
import { jsonLog, textLog } from './log.ts';
import { defineOptions, mergeDefaults } from './options.ts';
import { sleep, waitFor, withTimeout } from './time.ts';
import { TokenBucket } from './token-bucket.ts';

const testErrors = defineErrors('TST', {
  TST_OPTIONS: { message: 'invalid test options', canRetry: false, usage: true, action: 'fix them' },
  TST_ALREADY_STARTED: { message: 'already started', canRetry: false, action: 'start once' },
  TST_CLOSED: { message: 'closed', canRetry: false, action: 'make a new one' },
  TST_TIMEOUT: { message: 'close timed out', canRetry: false, action: 'wait longer' },
});
const lifecycleErrors: LifecycleErrors = {
  alreadyStarted: (d) => testErrors.create('TST_ALREADY_STARTED', d),
  closed: (d) => testErrors.create('TST_CLOSED', d),
  timeout: (d) => testErrors.create('TST_TIMEOUT', d),
};

describe('error catalogs', () => {
  it('refuse a code without the prefix and carry retry and usage', () => {
    expect(() => defineErrors('AB', { XY_ONE: { message: 'x', canRetry: false, action: 'y' } })).toThrow(/XY_ONE lacks the catalog prefix AB_/);
    const err = testErrors.create('TST_OPTIONS', '/port must be integer');
    expect(err).toBeInstanceOf(CityError);
    expect(err.message).toBe('invalid test options: /port must be integer');
    expect([err.code, err.canRetry, err.usage]).toEqual(['TST_OPTIONS', false, true]);
    expect(exitCodeOf(err)).toBe(2);
    expect(exitCodeOf(testErrors.create('TST_CLOSED'))).toBe(1);
    expect(exitCodeOf(new Error('plain'))).toBe(1);
    expect(testErrors.is(err, 'TST_OPTIONS')).toBe(true);
    expect(testErrors.is(err, 'TST_CLOSED')).toBe(false);
  });
});

describe('options', () => {
  const resolver = defineOptions({
    schema: Type.Object(
      {
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        hosts: Type.Array(Type.String()),
        retry: Type.Object({ minMs: Type.Integer({ minimum: 1 }), maxMs: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
      },
      { additionalProperties: false },
    ),
    defaults: { port: 1883, hosts: ['a', 'b'], retry: { minMs: 100, maxMs: 1000 } },
    check: (o) => (o.retry.minMs > o.retry.maxMs ? '/retry/minMs must not exceed /retry/maxMs' : undefined),
    error: (detail) => testErrors.create('TST_OPTIONS', detail),
  });

  it('merges defaults deeply, replaces arrays, and takes undefined as "default"', () => {
    expect(resolver.resolve({ retry: { maxMs: 5000 }, hosts: ['c'], port: undefined })).toEqual({ port: 1883, hosts: ['c'], retry: { minMs: 100, maxMs: 5000 } });
    expect(resolver.resolveLayers({ port: 1 }, { port: 2 }, { retry: { minMs: 7 } })).toMatchObject({ port: 2, retry: { minMs: 7, maxMs: 1000 } });
    expect(mergeDefaults({ a: { b: 1 } }, { a: { c: 2 } })).toEqual({ a: { b: 1, c: 2 } });
  });

  it('names every wrong field and the cross-field rule', () => {
    expect(() => resolver.resolve({ port: 70000, retry: { minMs: 0 } } as never)).toThrow(/\/port must be <= 65535 \[maximum\].*\/retry\/minMs must be >= 1/);
    expect(() => resolver.resolve({ prot: 1 } as never)).toThrow(/\/prot is not a known option \[additionalProperties\]/);
    expect(() => resolver.resolve({ retry: { minMs: 2000 } })).toThrow(/invalid test options: \/retry\/minMs must not exceed \/retry\/maxMs/);
    expect(resolver.problems({ port: 'x' })).toEqual([{ path: '/port', rule: 'type', message: 'must be integer' }]);
  });
});

describe('lifecycle', () => {
  it('closes once, in reverse order of opening, and refuses a second start', async () => {
    const order: string[] = [];
    const life = createLifecycle({ name: 'thing', deadlineMs: 1000, errors: lifecycleErrors });
    await life.start(async () => {
      for (const part of ['a', 'b', 'c']) life.defer(part, () => order.push(part));
    });
    expect(life.state).toBe('running');
    await expect(life.start(async () => undefined)).rejects.toMatchObject({ code: 'TST_ALREADY_STARTED' });
    const first = life.close();
    expect(life.close()).toBe(first);
    await first;
    expect(order).toEqual(['c', 'b', 'a']);
    expect(life.state).toBe('closed');
    expect(() => life.assertRunning('publish')).toThrow(/thing is closed: publish/);
    await expect(life.start(async () => undefined)).rejects.toMatchObject({ code: 'TST_CLOSED' });
  });

  it('undoes what a failed start opened and rethrows its error', async () => {
    const closed: string[] = [];
    const life = createLifecycle({ name: 'thing', deadlineMs: 1000, errors: lifecycleErrors });
    await expect(
      life.start(async () => {
        life.defer('listener', () => closed.push('listener'));
        life.defer('buffer', () => closed.push('buffer'));
        throw new Error('port in use');
      }),
    ).rejects.toThrow('port in use');
    expect(closed).toEqual(['buffer', 'listener']);
    expect(life.state).toBe('closed');
  });

  it('waits for a start under way, then closes what it opened', async () => {
    const closed: string[] = [];
    const life = createLifecycle({ name: 'thing', deadlineMs: 1000, errors: lifecycleErrors });
    const started = life.start(async () => {
      life.defer('a', () => closed.push('a'));
      await sleep(30);
      life.defer('b', () => closed.push('b'));
    });
    await life.close();
    await expect(started).rejects.toMatchObject({ code: 'TST_CLOSED' });
    expect(closed).toEqual(['b', 'a']);
  });

  it('past the deadline aborts the signal, forces the rest and says what it waited for', async () => {
    const seen: string[] = [];
    const life = createLifecycle({ name: 'thing', deadlineMs: 50, errors: lifecycleErrors, forceGraceMs: 50 });
    await life.start(async () => {
      life.defer('consumer', () => seen.push('consumer closed'), () => seen.push('consumer forced'));
      life.defer('flush', () => new Promise<void>(() => undefined), () => seen.push('flush forced'));
    });
    await expect(life.close()).rejects.toMatchObject({ code: 'TST_TIMEOUT', message: expect.stringMatching(/waiting for flush/) });
    expect(life.signal.aborted).toBe(true);
    expect(seen).toEqual(['flush forced', 'consumer forced']);
  });

  it('reports the first closer that failed after running the others', async () => {
    const closed: string[] = [];
    const life = createLifecycle({ name: 'thing', deadlineMs: 1000, errors: lifecycleErrors });
    await life.start(async () => {
      life.defer('a', () => closed.push('a'));
      life.defer('b', () => Promise.reject(new Error('b failed')));
    });
    await expect(life.close()).rejects.toThrow('b failed');
    expect(closed).toEqual(['a']);
  });
});

describe('time', () => {
  it('sleep ends early on abort; withTimeout names what took too long; waitFor polls to a deadline', async () => {
    const abort = new AbortController();
    const t0 = Date.now();
    const slept = sleep(10_000, { signal: abort.signal });
    abort.abort();
    await slept;
    expect(Date.now() - t0).toBeLessThan(5_000);
    await expect(withTimeout(new Promise(() => undefined), 20, 'the flush')).rejects.toThrow('the flush took over 20 ms');
    await expect(withTimeout(Promise.resolve(7), 20, 'x')).resolves.toBe(7);
    let n = 0;
    await expect(waitFor(() => ++n >= 3 && n, { timeoutMs: 1000, intervalMs: 1, what: 'count' })).resolves.toBe(3);
    await expect(waitFor(() => false, { timeoutMs: 20, intervalMs: 5, what: 'never' })).rejects.toThrow('never: not reached within 20 ms');
  });
});

describe('token bucket', () => {
  it('allows a burst, refills at its rate, and is unlimited at rate 0', () => {
    const bucket = new TokenBucket(10, 2, 0);
    expect([bucket.tryTake(1, 0), bucket.tryTake(1, 0), bucket.tryTake(1, 0)]).toEqual([true, true, false]);
    expect(bucket.waitMs(1, 0)).toBe(100);
    expect(bucket.tryTake(1, 100)).toBe(true);
    bucket.take(50, 100);
    expect(bucket.available(100)).toBe(0);
    expect(bucket.idle(1000)).toBe(true);
    const open = new TokenBucket(0);
    expect(open.available()).toBe(Number.POSITIVE_INFINITY);
    expect(open.waitMs(1_000_000)).toBe(0);
  });
});

describe('record headers', () => {
  it('round-trip what the gateway writes and name what an event record lacks', () => {
    const written = recordHeaders({ gatewayId: 'gw-1', receivedAt: 1_714_564_800_000, eventId: 'ev-1', replayed: true });
    expect(written).toEqual({ 'gateway-id': 'gw-1', 'gateway-received-at': '1714564800000', 'schema-version': '1', 'event-id': 'ev-1', replayed: '1' });
    const asKafka = Object.fromEntries(Object.entries(written).map(([k, v]) => [k, Buffer.from(v)]));
    expect(readRecordHeaders(asKafka, { require: true })).toEqual({ gatewayId: 'gw-1', receivedAt: 1_714_564_800_000, schemaVersion: '1', eventId: 'ev-1', replayed: true });
    expect(headerText({ [HEADERS.eventId]: [Buffer.from('a'), 'b'] }, HEADERS.eventId)).toBe('b');
    const problems: Problem[] = [];
    readRecordHeaders({ [HEADERS.receivedAt]: '1714564800', [HEADERS.schemaVersion]: '2' }, { require: true, reader: 'this sink' }, problems);
    expect(problems.map((p) => `${p.path} ${p.message}`)).toEqual([
      'headers/gateway-id is missing',
      'headers/gateway-received-at "1714564800" looks like epoch seconds; epoch milliseconds expected',
      'headers/schema-version is 2 but this sink reads version 1',
      'headers/event-id is missing',
    ]);
    expect(recordHeaders({ gatewayId: 'g', receivedAt: 1, eventId: null })).not.toHaveProperty(HEADERS.eventId);
  });

  it('say whether the receive time came from a synchronised clock, and leave it out when unknown', () => {
    for (const clockSynced of [true, false]) {
      const written = recordHeaders({ gatewayId: 'gw-1', receivedAt: 1_714_564_800_000, eventId: 'ev-1', clockSynced });
      expect(written[HEADERS.clockSynced]).toBe(clockSynced ? '1' : '0');
      expect(readRecordHeaders(written, { require: true }).clockSynced).toBe(clockSynced);
    }
    expect(recordHeaders({ gatewayId: 'g', receivedAt: 1, eventId: null })).not.toHaveProperty(HEADERS.clockSynced);
    expect(readRecordHeaders({ [HEADERS.clockSynced]: 'yes' }, { require: false })).not.toHaveProperty('clockSynced');
  });
});

describe('logs and command lines', () => {
  it('writes JSON lines at or above the level, and human lines for progress', () => {
    const lines: string[] = [];
    const stream = { write: (t: string) => lines.push(t) } as unknown as NodeJS.WritableStream;
    const log = jsonLog('info', stream);
    log('debug', 'hidden');
    log('warn', 'disk low', { free: 10n });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', message: 'disk low', free: '10' });
    textLog('kafka', 'info', stream)('info', 'fetching jars', { version: '4.4.0' });
    expect(lines[1]).toBe('[kafka] fetching jars version=4.4.0\n');
  });

  it('prints usage for --help and turns a bad flag into a usage error', () => {
    const out: string[] = [];
    const command = { usage: 'usage: thing [--port N]', usageError: (d: string) => testErrors.create('TST_OPTIONS', d), out: (t: string) => out.push(t) };
    expect(parseCommandLine(['--help'], { port: { type: 'string' } }, command)).toBeUndefined();
    expect(out).toEqual(['usage: thing [--port N]\n']);
    expect(parseCommandLine(['--port', '1'], { port: { type: 'string' } }, command)?.values.port).toBe('1');
    expect(() => parseCommandLine(['--prot', '1'], { port: { type: 'string' } }, command)).toThrow(/Unknown option '--prot'/);
  });
});
