// Benchmark target (not a test, not the product): the least a Node.js MQTT 3.1.1 QoS 1 acknowledger can
// do, to tell what the gateway's CPU per message is made of at the field load (field-load.ts --floor).
// It frames packets on each socket's 'data' chunks, answers CONNECT, PINGREQ and DISCONNECT, and
// acknowledges every QoS 1 PUBLISH — nothing else: no MQTT library, no validation, no ACL.
//   node test/bench/mqtt-floor.ts --port N [--durable db|file [--window-ms 5]]
// --durable db: the gateway's durability scheme without the gateway — what arrives within the commit
// window (the gateway's default, 5 ms) is one SQLite row (WAL, synchronous=NORMAL), acknowledged after
// an fdatasync of the WAL on the thread pool that started after the commit.
// --durable file: the same, appended to a plain file instead: what the fdatasync alone costs.
import Database from 'better-sqlite3';
import { fdatasync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, durable: { type: 'string' }, 'window-ms': { type: 'string', default: '5' } } });
if (values.port === undefined || (values.durable !== undefined && values.durable !== 'db' && values.durable !== 'file')) {
  process.stderr.write('usage: node test/bench/mqtt-floor.ts --port N [--host 127.0.0.1] [--durable db|file [--window-ms 5]]\n');
  process.exit(2);
}

const CONNACK = Buffer.from([0x20, 2, 0, 0]);
const PINGRESP = Buffer.from([0xd0, 0]);
const WINDOW_MS = Number(values['window-ms']);

let commit: ((socket: Socket, packetId: number, payload: Buffer) => void) | undefined;
if (values.durable !== undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-floor-'));
  const path = join(dir, 'floor.db');
  // field-load.ts stops its targets with SIGTERM.
  process.on('SIGTERM', () => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
  let store: (body: Buffer) => void;
  let syncFd: number;
  if (values.durable === 'db') {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE commits (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO commits (body) VALUES (?)');
    store = (body) => insert.run(body);
    syncFd = openSync(`${path}-wal`, 'r');
  } else {
    const fd = openSync(path, 'a');
    store = (body) => writeSync(fd, body);
    syncFd = fd;
  }
  let sockets: Socket[] = [];
  let ids: number[] = [];
  let payloads: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  let syncing = false;
  let waiting: (() => void)[] = [];
  const sync = (done: () => void) => {
    waiting.push(done);
    if (syncing) return;
    const run = () => {
      const batch = waiting;
      waiting = [];
      syncing = true;
      fdatasync(syncFd, (err) => {
        if (err) throw err;
        syncing = false;
        for (const cb of batch) cb();
        if (waiting.length > 0) run();
      });
    };
    run();
  };
  const cut = () => {
    timer = undefined;
    const s = sockets;
    const p = ids;
    store(Buffer.concat(payloads));
    sockets = [];
    ids = [];
    payloads = [];
    sync(() => {
      for (let i = 0; i < s.length; i++) s[i]!.write(puback(p[i]!));
    });
  };
  commit = (socket, packetId, payload) => {
    sockets.push(socket);
    ids.push(packetId);
    payloads.push(payload);
    timer ??= setTimeout(cut, WINDOW_MS);
  };
}

function puback(id: number): Buffer {
  return Buffer.from([0x40, 2, id >> 8, id & 0xff]);
}

createServer({ noDelay: true }, (socket) => {
  let held: Buffer | undefined;
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    const buf = held === undefined ? chunk : Buffer.concat([held, chunk]);
    held = undefined;
    let at = 0;
    while (at < buf.length) {
      // Fixed header: type and flags, then the remaining length as a varint of up to 4 bytes.
      let length = 0;
      let shift = 0;
      let i = at + 1;
      let complete = false;
      while (i < buf.length && i < at + 5) {
        const b = buf[i++]!;
        length |= (b & 0x7f) << shift;
        shift += 7;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || i + length > buf.length) break;
      const first = buf[at]!;
      const body = i;
      at = i + length;
      if (first >> 4 === 3) {
        const topicLength = buf.readUInt16BE(body);
        // QoS 0 needs no answer; the generator sends QoS 1.
        if (((first >> 1) & 3) === 0) continue;
        const packetId = buf.readUInt16BE(body + 2 + topicLength);
        if (commit === undefined) socket.write(puback(packetId));
        else commit(socket, packetId, buf.subarray(body + 4 + topicLength, at));
      } else if (first >> 4 === 1) {
        socket.write(CONNACK);
      } else if (first >> 4 === 12) {
        socket.write(PINGRESP);
      } else if (first >> 4 === 14) {
        socket.end();
      }
    }
    if (at < buf.length) held = Buffer.from(buf.subarray(at));
  });
}).listen(Number(values.port), values.host);
