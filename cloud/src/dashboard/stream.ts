// One server-sent-events stream per page. Every message gets an id `<run>-<seq>` and is kept in a ring
// bounded by count and bytes; a page that reconnects with Last-Event-ID inside the ring gets what it
// missed replayed, one outside it (too far behind, or from an earlier run) gets a snapshot instead. A
// page that cannot keep up (its socket's buffer past the bound) is cut off and comes back the same way.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { eventId, parseEventId, type StreamMessage } from './messages.ts';

export interface StreamSettings {
  /** Distinguishes this server's ids from an earlier run's. */
  run: string;
  ringSize: number;
  ringBytes: number;
  heartbeatMs: number;
  /** Bytes queued on one page's socket beyond which it is cut off (it reconnects and catches up). */
  maxClientBufferBytes: number;
  /** How long a reconnecting browser waits (the SSE `retry` field). */
  retryMs: number;
}

export interface StreamStats {
  clients: number;
  connects: number;
  /** Connects with a Last-Event-ID answered from the ring. */
  resumed: number;
  /** Messages sent again on resume. */
  replayed: number;
  snapshots: number;
  /** Pages cut off for falling behind. */
  slowDropped: number;
  seq: number;
  ringMessages: number;
  ringBytes: number;
}

export interface EventStream {
  /** Publishes the message `build(seq)` makes for the next sequence number. */
  publish(build: (seq: number) => StreamMessage): void;
  /** Serves one page: replay or snapshot first, then every message published. */
  attach(req: IncomingMessage, res: ServerResponse): void;
  /** Cuts every page off (they reconnect by themselves); for operators and tests. */
  dropClients(): number;
  stats(): StreamStats;
  close(): void;
}

interface Entry {
  seq: number;
  text: string;
}

const frame = (id: string, event: string, data: string) => `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;

export function createEventStream(settings: StreamSettings, snapshot: (seq: number) => StreamMessage): EventStream {
  const ring: Entry[] = [];
  let ringHead = 0;
  let bytes = 0;
  let seq = 0;
  const clients = new Set<ServerResponse>();
  const counters = { connects: 0, resumed: 0, replayed: 0, snapshots: 0, slowDropped: 0 };
  let closed = false;

  const send = (res: ServerResponse, text: string): void => {
    if (res.destroyed) return;
    res.write(text);
    if (res.writableLength > settings.maxClientBufferBytes) {
      counters.slowDropped++;
      clients.delete(res);
      res.destroy();
    }
  };

  const heartbeat = setInterval(() => {
    for (const res of clients) send(res, `: heartbeat ${Date.now()}\n\n`);
  }, settings.heartbeatMs);
  heartbeat.unref();

  const trim = () => {
    while (ring.length - ringHead > settings.ringSize || (bytes > settings.ringBytes && ring.length - ringHead > 1)) {
      bytes -= (ring[ringHead] as Entry).text.length;
      ringHead++;
    }
    // Compact the array now and then instead of shifting on every message.
    if (ringHead > 1024 && ringHead * 2 > ring.length) {
      ring.splice(0, ringHead);
      ringHead = 0;
    }
  };

  return {
    publish(build) {
      if (closed) return;
      seq++;
      const message = build(seq);
      const text = frame(eventId(settings.run, seq), message.type, JSON.stringify(message));
      ring.push({ seq, text });
      bytes += text.length;
      trim();
      for (const res of clients) send(res, text);
    },
    attach(req, res) {
      if (closed) {
        res.writeHead(503).end();
        return;
      }
      counters.connects++;
      // No compression on this route, and nothing between us and the page may buffer or transform it.
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.socket?.setNoDelay(true);
      res.write(`retry: ${settings.retryMs}\n\n`);
      const header = req.headers['last-event-id'];
      const last = parseEventId(Array.isArray(header) ? header[0] : header);
      const oldest = ring.length > ringHead ? (ring[ringHead] as Entry).seq : seq + 1;
      if (last !== undefined && last.run === settings.run && last.seq <= seq && last.seq >= oldest - 1) {
        counters.resumed++;
        for (let i = ringHead; i < ring.length; i++) {
          const entry = ring[i] as Entry;
          if (entry.seq > last.seq) {
            counters.replayed++;
            res.write(entry.text);
          }
        }
      } else {
        counters.snapshots++;
        res.write(frame(eventId(settings.run, seq), 'snapshot', JSON.stringify(snapshot(seq))));
      }
      clients.add(res);
      const gone = () => clients.delete(res);
      res.on('close', gone);
      req.on('close', gone);
    },
    dropClients() {
      const n = clients.size;
      for (const res of clients) res.destroy();
      clients.clear();
      return n;
    },
    stats: () => ({ clients: clients.size, ...counters, seq, ringMessages: ring.length - ringHead, ringBytes: bytes }),
    close() {
      closed = true;
      clearInterval(heartbeat);
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}
