// Benchmark (not a test): the Power BI pusher against the local server that enforces the documented
// push dataset limits (test/support/powerbi.ts), at 50,000 events/s of input.
//   node test/bench/powerbi.ts [--seconds 20] [--rate 50000] [--speedup 120] [--flood-rows 50000]
// (a) pipeline: synthetic events (vehicles, 2,000 cameras, 500 air and 300 weather stations) at --rate
//     through the live engine's two stages in process (no Kafka: this measures the pusher), event time
//     running --speedup times faster than the clock; finished windows go to the push dataset.
// (b) flood: --flood-rows KPI rows per second written straight into the pusher, far over the limits,
//     to show the coarsening and its counts.
// Reference in the same run: the rows per second the limits allow for a whole hour
// (min(120 POSTs/min × 10,000 rows, 1,000,000 rows/h)). Goal: no 429, 0 rows lost (every row written is
// delivered or counted as dropped).
import { parseArgs } from 'node:util';
import { eventRow, eventTable, exampleEvent, sleep, type CellValue, type EventKind } from '@city/protocol';
import { createPowerBiOutput, KPI_DEFINITIONS, Merger, staticTokenSource, WindowEngine, POWERBI_LIMITS, type OutputRow } from '@city/cloud';
import { startPowerBiServer } from '../support/powerbi.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, rate: { type: 'string' }, speedup: { type: 'string' }, 'flood-rows': { type: 'string' } } });
const seconds = Number(values.seconds ?? 20);
const rate = Number(values.rate ?? 50_000);
const speedup = Number(values.speedup ?? 120);
const floodRows = Number(values['flood-rows'] ?? 50_000);

const limitRowsPerSecond = Math.min((POWERBI_LIMITS.postsPerMinute * POWERBI_LIMITS.rowsPerPost) / 60, POWERBI_LIMITS.rowsPerHour / 3600);

/** Column setters over a template row of each kind: building 50,000 rows a second from scratch would measure the generator. */
function template(kind: EventKind) {
  const columns = new Map<string, number>();
  const row = eventRow(kind, exampleEvent(kind), { gatewayId: 'gw-bench', receivedAt: 0 });
  // eventRow's column order is the table's; find the ones the generator changes by name.
  eventTable(kind).columns.forEach((c, i) => columns.set(c.name, i));
  return { row, at: (name: string) => columns.get(name)! };
}

async function pipeline() {
  const server = await startPowerBiServer();
  const out = createPowerBiOutput({ mode: 'push', apiBase: server.apiBase, datasetName: 'bench', tokens: staticTokenSource(server.token) });
  await out.start();
  const engine = new WindowEngine({ definitions: KPI_DEFINITIONS, allowedLatenessMs: 60_000, idleTimeoutMs: 10_000 });
  const merger = new Merger({ allowedLatenessMs: 60_000, graceMs: 0 });
  const kinds: { kind: EventKind; share: number; devices: number; source: (d: number) => string }[] = [
    { kind: 'vehicle', share: 0.5, devices: 10_000, source: (d) => `v/${d % 6}` },
    { kind: 'traffic_camera', share: 0.3, devices: 2_000, source: (d) => `c/${d % 3}` },
    { kind: 'air_quality', share: 0.1, devices: 500, source: (d) => `a/${d % 3}` },
    { kind: 'weather', share: 0.1, devices: 300, source: (d) => `w/${d % 3}` },
  ];
  const templates = new Map(kinds.map((k) => [k.kind, template(k.kind)]));
  const offsets = new Map<string, bigint>();
  const t0 = Date.now();
  const eventT0 = Date.parse('2026-12-01T00:00:00.000Z');
  let events = 0;
  let rowsWritten = 0;
  let finals = 0;
  let nextTick = t0 + 1_000;
  let lat = 52.34;
  while (Date.now() - t0 < seconds * 1000) {
    const due = Math.floor(((Date.now() - t0) / 1000) * rate);
    for (; events < due; events++) {
      const r = (events * 2_654_435_761) % 1_000;
      const k = r < 500 ? kinds[0]! : r < 800 ? kinds[1]! : r < 900 ? kinds[2]! : kinds[3]!;
      const device = events % k.devices;
      const t = templates.get(k.kind)!;
      const eventMs = eventT0 + (Date.now() - t0) * speedup - (events % 7) * 500;
      t.row[t.at('date_observed')] = eventMs;
      t.row[t.at('device_id')] = `${k.kind}-${device}`;
      if (k.kind === 'vehicle') {
        lat = lat > 52.40 ? 52.34 : lat + 0.0007;
        t.row[t.at('location_lat')] = lat;
        t.row[t.at('speed')] = (events % 30) + 0.5;
      }
      const source = k.source(device);
      const offset = offsets.get(source) ?? 0n;
      offsets.set(source, offset + 1n);
      engine.add(source, k.kind, offset, eventMs, t.row as CellValue[], undefined, Date.now());
    }
    if (Date.now() >= nextTick) {
      nextTick += 1_000;
      const { contributions } = engine.tick(Date.now());
      contributions.forEach((c, i) => merger.add('k/0', BigInt(finals + i), c));
      const merged = merger.tick(Date.now()).windows.filter((w) => w.final);
      finals += merged.length;
      const byKpi = new Map<string, OutputRow[]>();
      for (const w of merged) {
        const row: OutputRow = { window_start: new Date(w.windowStart).toISOString(), window_end: new Date(w.windowEnd).toISOString(), key: w.key, final: true, emitted_at: new Date().toISOString(), ...w.values };
        byKpi.set(w.kpi, [...(byKpi.get(w.kpi) ?? []), row]);
      }
      for (const [kpi, rows] of byKpi) {
        out.write(kpi, rows);
        rowsWritten += rows.length;
      }
    }
    await sleep(5);
  }
  const wall = (Date.now() - t0) / 1000;
  await out.close();
  const st = out.stats();
  await server.close();
  return { wall, events, rowsWritten, st, server: server.counts };
}

async function flood() {
  const server = await startPowerBiServer();
  const out = createPowerBiOutput({ mode: 'push', apiBase: server.apiBase, datasetName: 'flood', tokens: staticTokenSource(server.token), closeTimeoutMs: 2_000 });
  await out.start();
  const t0 = Date.now();
  let written = 0;
  let window = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const due = Math.floor(((Date.now() - t0) / 1000) * floodRows);
    const rows: OutputRow[] = [];
    for (; written < due; written++) {
      const key = `cam-${written % 2_000}`;
      if (written % 2_000 === 0) window++;
      const start = Date.parse('2026-12-01T00:00:00.000Z') + window * 900_000;
      rows.push({ window_start: new Date(start).toISOString(), window_end: new Date(start + 900_000).toISOString(), key, final: true, emitted_at: new Date().toISOString(), district: 'Centrum', periods: 15, intensity: 10, mean_occupancy: 0.2, mean_speed_kmh: 30, congested_periods: 0 });
    }
    out.write('camera_flow_15m', rows);
    await sleep(20);
  }
  const wall = (Date.now() - t0) / 1000;
  await out.close();
  const st = out.stats();
  await server.close();
  return { wall, written, st, server: server.counts };
}

const a = await pipeline();
const lostA = a.rowsWritten - a.st.delivered - a.st.dropped - a.st.queued;
console.log(`Power BI pusher vs the local limit-enforcing server; 2 cores shared with other work (figures move with load)`);
console.log(`reference: the documented limits allow ${limitRowsPerSecond.toFixed(1)} rows/s sustained over an hour (10,000 rows/POST, 120 POSTs/min, 1,000,000 rows/h)`);
console.log(`(a) pipeline: ${(a.events / a.wall).toFixed(0)} events/s in for ${a.wall.toFixed(1)} s (event time x${speedup}) -> ${a.rowsWritten} finished KPI rows (${(a.rowsWritten / a.wall).toFixed(1)} rows/s)`);
console.log(`    delivered ${a.st.delivered} rows (${(a.st.delivered / a.wall).toFixed(1)} rows/s, ${((a.st.delivered / a.wall / limitRowsPerSecond) * 100).toFixed(1)} % of the hourly limit rate) in ${a.server.posts} POSTs; dropped ${a.st.dropped}; 429s ${a.server.throttled}; lost ${lostA}`);
const b = await flood();
const lostB = b.written - b.st.delivered - b.st.dropped - b.st.queued;
console.log(`(b) flood: ${(b.written / b.wall).toFixed(0)} rows/s written for ${b.wall.toFixed(1)} s -> delivered ${b.st.delivered} (${(b.st.delivered / b.wall).toFixed(0)} rows/s) in ${b.server.posts} POSTs, max ${b.server.maxPendingSeen} pending;`);
console.log(`    dropped ${b.st.dropped} (superseded ${b.st.superseded}, coarsened ${b.st.coarsened}, rest over the queue bound or unsent at close); 429s ${b.server.throttled}; lost ${lostB}`);
process.exit(lostA === 0 && lostB === 0 && a.server.throttled === 0 && b.server.throttled === 0 ? 0 : 1);
