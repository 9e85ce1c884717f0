// The event stream over a real socket: ids, replay from the ring on Last-Event-ID, a snapshot when the
// id is outside the ring or from another run, heartbeats, no compression, and a slow page cut off.
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '@city/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamMessage } from './messages.ts';
import { createEventStream, type EventStream, type StreamSettings } from './stream.ts';

const SETTINGS: StreamSettings = { run: 'r1', ringSize: 5, ringBytes: 1 << 20, heartbeatMs: 100, maxClientBufferBytes: 1 << 20, retryMs: 500 };
const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0).reverse()) o.close();
});

async function serve(settings: Partial<StreamSettings> = {}): Promise<{ stream: EventStream; port: number }> {
  const stream = createEventStream({ ...SETTINGS, ...settings }, (seq) => ({ type: 'snapshot', seq, state: { snap: true } }) as unknown as StreamMessage);
  const server: Server = createServer((req, res) => stream.attach(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push({ close: () => server.close() }, { close: () => stream.close() }, { close: () => server.closeAllConnections() });
  return { stream, port: (server.address() as AddressInfo).port };
}

const delta = (seq: number) => ({ type: 'delta', seq }) as unknown as StreamMessage;

/** A raw SSE client: the frames as they arrive, and the response headers. */
function listen(port: number, lastEventId?: string) {
  const frames: { id?: string; event?: string; data?: string; comment?: string }[] = [];
  let response: IncomingMessage | undefined;
  let buffer = '';
  const req = get({ host: '127.0.0.1', port, path: '/events', headers: { 'accept-encoding': 'gzip, br', ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) } }, (res) => {
    response = res;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const frame: (typeof frames)[number] = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) frame.comment = line.slice(1).trim();
          const m = /^(id|event|data): (.*)$/.exec(line);
          if (m !== null) frame[m[1] as 'id' | 'event' | 'data'] = m[2];
        }
        frames.push(frame);
      }
    });
  });
  req.on('error', () => undefined);
  open.push({ close: () => req.destroy() });
  return { frames, headers: () => response?.headers, events: () => frames.filter((f) => f.event !== undefined) };
}

describe('dashboard event stream', () => {
  it('sends a snapshot to a new page, then every message with its id; no compression, heartbeats', async () => {
    const { stream, port } = await serve();
    stream.publish(delta);
    const page = listen(port);
    await waitFor(() => page.events().length === 1, { timeoutMs: 5_000, what: 'snapshot' });
    expect(page.events()[0]).toMatchObject({ id: 'r1-1', event: 'snapshot' });
    stream.publish(delta);
    stream.publish(delta);
    await waitFor(() => page.events().length === 3, { timeoutMs: 5_000, what: 'deltas' });
    expect(page.events().map((f) => f.id)).toEqual(['r1-1', 'r1-2', 'r1-3']);
    expect(JSON.parse(page.events()[2]!.data!)).toEqual({ type: 'delta', seq: 3 });
    const headers = page.headers()!;
    expect(headers['content-type']).toMatch(/^text\/event-stream/);
    expect(headers['content-encoding']).toBeUndefined();
    expect(headers['cache-control']).toContain('no-transform');
    expect(page.frames.some((f) => f.comment === undefined && f.event === undefined)).toBe(true); // retry: line
    await waitFor(() => page.frames.some((f) => f.comment?.startsWith('heartbeat') === true), { timeoutMs: 5_000, what: 'heartbeat' });
  });

  it('replays what a page missed when its Last-Event-ID is in the ring', async () => {
    const { stream, port } = await serve();
    for (let i = 0; i < 6; i++) stream.publish(delta);
    // The ring holds seq 2..6: a page that saw 3 gets 4, 5, 6 and no snapshot.
    const page = listen(port, 'r1-3');
    await waitFor(() => page.events().length === 3, { timeoutMs: 5_000, what: 'replay' });
    expect(page.events().map((f) => `${f.event} ${f.id}`)).toEqual(['delta r1-4', 'delta r1-5', 'delta r1-6']);
    // Up to date (its id is the newest): nothing to replay.
    const current = listen(port, 'r1-6');
    await waitFor(() => stream.stats().clients === 2, { timeoutMs: 5_000, what: 'second page attached' });
    stream.publish(delta);
    await waitFor(() => current.events().length === 1 && page.events().length === 4, { timeoutMs: 5_000, what: 'live delta' });
    expect(current.events()[0]).toMatchObject({ id: 'r1-7', event: 'delta' });
    expect(stream.stats()).toMatchObject({ resumed: 2, replayed: 3, snapshots: 0, ringMessages: 5 });
  });

  it('sends a snapshot when the page is too far behind, ahead, or from another run', async () => {
    const { stream, port } = await serve();
    for (let i = 0; i < 10; i++) stream.publish(delta);
    const behind = listen(port, 'r1-2');
    const other = listen(port, 'r0-9');
    const ahead = listen(port, 'r1-99');
    const junk = listen(port, 'not an id');
    await waitFor(() => [behind, other, ahead, junk].every((p) => p.events().length === 1), { timeoutMs: 5_000, what: 'snapshots' });
    for (const p of [behind, other, ahead, junk]) expect(p.events()[0]).toMatchObject({ event: 'snapshot', id: 'r1-10' });
    expect(stream.stats().snapshots).toBe(4);
  });

  it('keeps the ring within its byte bound', async () => {
    const { stream } = await serve({ ringSize: 1000, ringBytes: 2048 });
    for (let i = 0; i < 100; i++) stream.publish((seq) => ({ type: 'delta', seq, pad: 'x'.repeat(200) }) as unknown as StreamMessage);
    expect(stream.stats().ringBytes).toBeLessThanOrEqual(2048);
    expect(stream.stats().ringMessages).toBeGreaterThan(1);
  });

  it('cuts off a page that does not read, and keeps serving the others', async () => {
    const { stream, port } = await serve({ maxClientBufferBytes: 512 * 1024 });
    const reader = listen(port);
    // A page that never reads: pause its socket so the server's buffer fills.
    const stalled = get({ host: '127.0.0.1', port, path: '/events' }, (res) => res.pause());
    stalled.on('error', () => undefined);
    open.push({ close: () => stalled.destroy() });
    await waitFor(() => stream.stats().clients === 2, { timeoutMs: 5_000, what: 'two pages' });
    const big = 'y'.repeat(16 * 1024);
    for (let i = 0; i < 4000 && stream.stats().slowDropped === 0; i++) {
      stream.publish((seq) => ({ type: 'delta', seq, pad: big }) as unknown as StreamMessage);
      await new Promise((r) => setImmediate(r));
    }
    expect(stream.stats().slowDropped).toBe(1);
    expect(stream.stats().clients).toBe(1);
    await waitFor(() => reader.events().length >= 2, { timeoutMs: 5_000, what: 'the reading page still served' });
  });
});
