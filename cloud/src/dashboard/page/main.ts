// The operations page: one EventSource on /events, the city state kept in bounded maps (the server sends
// removals; the page also caps what it keeps), the map redrawn at most once a frame, panels re-rendered
// at most once per message, charts fed from fixed-size rings.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { AQI_BANDS, type AlertView, type CameraView, type CityState, type DeltaMessage, type GatewayView, type HealthView, type IncidentView, type KpiView, type SnapshotMessage, type StationView, type VehicleRow } from '../messages.ts';
import { AQI_COLOURS, cameraColour, createMap, VEHICLE_COLOURS, type CityGeometry } from './map.ts';
import { SeriesRing } from './ring.ts';

/** Bounds of what the page keeps, whatever the server sends. */
const MAX_VEHICLES = 20_000;
const MAX_ALERT_ITEMS = 50;
const MAX_TILES = 12;
const MAX_GATEWAY_ROWS = 40;
const CHART_POINTS = 600;
const KPI_SERIES = 4;
const LATENCY_SAMPLES = 500_000;
const FINAL_SAMPLES = 50_000;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const vehicles = new Map<string, VehicleRow>();
const stations = new Map<string, StationView>();
const cameras = new Map<string, CameraView>();
const incidents = new Map<string, IncidentView>();
const gateways = new Map<string, GatewayView>();
const kpis = new Map<string, KpiView>();
const activeAlerts = new Map<string, AlertView>();
let feed: AlertView[] = [];
let health: HealthView | undefined;

/** What tests and benchmarks read: the stream's bookkeeping and the state the canvas draws. */
const probe = {
  lastSeq: undefined as number | undefined,
  messages: 0,
  snapshots: 0,
  /** Deltas whose seq did not follow the previous one: a gap the stream should never leave. */
  gaps: 0,
  opens: 0,
  errors: 0,
  /** Set by a benchmark: for each vehicle row applied, now − its event time is kept (bounded). */
  sampleLatency: false,
  latencies: [] as number[],
  /** When (page clock) each window's final value first reached the page, by `kpi|key|windowEnd` (bounded). */
  finals: new Map<string, number>(),
  vehicleCount: () => vehicles.size,
  vehicle: (id: string) => vehicles.get(id),
  station: (id: string) => stations.get(id),
  camera: (id: string) => cameras.get(id),
  incident: (id: string) => incidents.get(id),
  domNodes: () => document.getElementsByTagName('*').length,
};
(window as unknown as { __city: typeof probe }).__city = probe;

function putVehicle(row: VehicleRow, now: number) {
  vehicles.delete(row[0]);
  vehicles.set(row[0], row);
  if (vehicles.size > MAX_VEHICLES) vehicles.delete(vehicles.keys().next().value as string);
  if (probe.sampleLatency && probe.latencies.length < LATENCY_SAMPLES) probe.latencies.push(now - row[6]);
}

function noteFinal(k: KpiView, now: number) {
  const note = (windowEnd: string) => {
    const id = `${k.kpi}|${k.key}|${windowEnd}`;
    if (!probe.finals.has(id) && probe.finals.size < FINAL_SAMPLES) probe.finals.set(id, now);
  };
  if (k.final) note(k.windowEnd);
  if (k.lastFinal !== undefined) note(k.lastFinal.windowEnd);
}

function applySnapshot(m: SnapshotMessage) {
  const s: CityState = m.state;
  const now = Date.now();
  vehicles.clear();
  for (const v of s.vehicles) putVehicle(v, now);
  const fill = <V>(map: Map<string, V>, items: V[], key: (v: V) => string) => {
    map.clear();
    for (const v of items) map.set(key(v), v);
  };
  fill(stations, s.stations, (v) => v.id);
  fill(cameras, s.cameras, (v) => v.id);
  fill(incidents, s.incidents, (v) => v.id);
  fill(gateways, s.gateways, (v) => v.id);
  fill(kpis, s.kpis, (v) => `${v.kpi}|${v.key}`);
  for (const k of s.kpis) noteFinal(k, now);
  fill(activeAlerts, s.activeAlerts, (v) => v.alertId);
  feed = s.alertFeed.slice(-MAX_ALERT_ITEMS);
  health = s.health;
  probe.snapshots++;
}

function applyDelta(m: DeltaMessage) {
  const now = Date.now();
  for (const v of m.vehicles) putVehicle(v, now);
  for (const id of m.removedVehicles) vehicles.delete(id);
  for (const s of m.stations) stations.set(s.id, s);
  for (const c of m.cameras) cameras.set(c.id, c);
  for (const i of m.incidents) incidents.set(i.id, i);
  for (const id of m.removedIncidents) incidents.delete(id);
  for (const g of m.gateways) gateways.set(g.id, g);
  for (const k of m.kpis) {
    kpis.set(`${k.kpi}|${k.key}`, k);
    noteFinal(k, now);
  }
  for (const a of m.alerts) {
    if (a.state === 'raised') activeAlerts.set(a.alertId, a);
    else activeAlerts.delete(a.alertId);
    feed.push(a);
  }
  if (feed.length > MAX_ALERT_ITEMS) feed = feed.slice(-MAX_ALERT_ITEMS);
  if (m.health !== undefined) health = m.health;
}

// ---- panels -------------------------------------------------------------------------------------

const fmt = (n: number, digits = 1) => (Math.abs(n) >= 100 ? Math.round(n).toString() : n.toFixed(digits));
const ago = (ms: number) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};
const time = (iso: string) => new Date(iso).toISOString().slice(11, 19);

interface Tile {
  kpi: string;
  field: string;
  value: number;
  keys: number;
  finals: number;
  windowEnd: string;
  /** Mean over keys of the same field in each key's newest final window, and the latest end among them. */
  lastFinal: { value: number; windowEnd: string } | undefined;
}

/** One tile per KPI: its first numeric value over every key's newest window (mean across keys). */
function tiles(): Tile[] {
  const by = new Map<string, { field: string; sum: number; n: number; finals: number; windowEnd: string; fSum: number; fN: number; fEnd: string }>();
  for (const k of kpis.values()) {
    const entry = Object.entries(k.values).find(([, v]) => typeof v === 'number');
    if (entry === undefined) continue;
    const [field, value] = entry as [string, number];
    const t = by.get(k.kpi) ?? { field, sum: 0, n: 0, finals: 0, windowEnd: k.windowEnd, fSum: 0, fN: 0, fEnd: '' };
    t.sum += value;
    t.n++;
    const final = k.final ? { values: k.values, windowEnd: k.windowEnd } : k.lastFinal;
    const fv = final?.values[t.field];
    if (final !== undefined && typeof fv === 'number') {
      t.fSum += fv;
      t.fN++;
      if (final.windowEnd > t.fEnd) t.fEnd = final.windowEnd;
    }
    if (k.final) t.finals++;
    if (k.windowEnd > t.windowEnd) t.windowEnd = k.windowEnd;
    by.set(k.kpi, t);
  }
  return [...by.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .slice(0, MAX_TILES)
    .map(([kpi, t]) => ({
      kpi, field: t.field, value: t.sum / t.n, keys: t.n, finals: t.finals, windowEnd: t.windowEnd,
      lastFinal: t.fN === 0 ? undefined : { value: t.fSum / t.fN, windowEnd: t.fEnd },
    }));
}

/** Keyed children: an element per key is kept and updated, extra ones removed (DOM size stays bounded). */
function reconcile<T>(parent: HTMLElement, items: readonly T[], key: (t: T) => string, tag: string, render: (el: HTMLElement, t: T) => void) {
  const existing = new Map<string, HTMLElement>();
  for (const el of Array.from(parent.children) as HTMLElement[]) existing.set(el.dataset['key'] ?? '', el);
  let i = 0;
  for (const item of items) {
    const k = key(item);
    let el = existing.get(k);
    if (el === undefined) {
      el = document.createElement(tag);
      el.dataset['key'] = k;
    }
    existing.delete(k);
    render(el, item);
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null);
    i++;
  }
  for (const el of existing.values()) el.remove();
}

function cell(text: string, cls?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls !== undefined) td.className = cls;
  return td;
}

function renderPanels() {
  const list = tiles();
  reconcile($('tiles'), list, (t) => t.kpi, 'div', (el, t) => {
    el.className = 'tile';
    el.dataset['kpi'] = t.kpi;
    el.innerHTML = '';
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = `${t.kpi} · ${t.field}`;
    name.title = name.textContent;
    const value = document.createElement('div');
    value.className = 'value';
    value.textContent = fmt(t.value);
    const sub = document.createElement('div');
    sub.className = 'sub';
    sub.textContent = `${t.keys} key${t.keys === 1 ? '' : 's'} · ${t.finals === t.keys ? 'final' : 'early'} · to ${time(t.windowEnd)}`;
    el.append(name, value, sub);
    if (t.lastFinal !== undefined && t.finals !== t.keys) {
      const last = document.createElement('div');
      last.className = 'sub last-final';
      last.textContent = `final to ${time(t.lastFinal.windowEnd)}: ${fmt(t.lastFinal.value)}`;
      el.append(last);
    }
  });

  $('alert-count').textContent = String(activeAlerts.size);
  const items = [...feed].reverse();
  reconcile($('alerts'), items, (a) => `${a.alertId}|${a.state}`, 'li', (el, a) => {
    el.dataset['alertId'] = a.alertId;
    el.dataset['state'] = a.state;
    el.dataset['severity'] = a.severity;
    el.dataset['active'] = String(activeAlerts.has(a.alertId) && a.state === 'raised');
    el.innerHTML = '';
    const head = document.createElement('div');
    head.textContent = `${a.state === 'raised' ? '▲ raised' : '▼ cleared'} · ${a.rule} · ${a.key}`;
    const msg = document.createElement('div');
    msg.textContent = `${a.message} (value ${fmt(a.value)}, threshold ${fmt(a.threshold)})`;
    const when = document.createElement('div');
    when.className = 'when';
    when.textContent = a.state === 'raised' ? `raised ${time(a.raisedAt)} · ${a.severity}` : `cleared ${a.clearedAt === null ? '' : time(a.clearedAt)}, raised ${time(a.raisedAt)}`;
    el.append(head, msg, when);
  });

  const gws = [...gateways.values()].sort((a, b) => Number(b.offline) - Number(a.offline) || b.bufferDepth - a.bufferDepth || (a.id < b.id ? -1 : 1)).slice(0, MAX_GATEWAY_ROWS);
  reconcile($('gateways'), gws, (g) => g.id, 'tr', (el, g) => {
    el.dataset['gateway'] = g.id;
    el.dataset['offline'] = String(g.offline);
    el.replaceChildren(cell(g.id), cell(g.offline ? 'offline' : 'online', g.offline ? 'offline' : 'online'), cell(`${g.bufferDepth}`, 'num'), cell(ago(g.lastReport)));
  });

  const h = health;
  if (h !== undefined) {
    const topics = Object.keys({ ...h.consumed, ...h.lag, ...h.sinkLag }).sort();
    reconcile($('topics'), topics, (t) => t, 'tr', (el, t) => {
      el.dataset['topic'] = t;
      el.replaceChildren(cell(t.replace(/^city\./, '')), cell(h.sinkLag[t] === undefined ? '–' : String(h.sinkLag[t]), 'num sink-lag'), cell(String(h.lag[t] ?? 0), 'num'), cell(String(h.rate[t] ?? 0), 'num'));
    });
    const missing = h.missing.length === 0 ? '' : ` · not read (topic missing): ${h.missing.map((t) => t.replace(/^city\./, '')).join(', ')}`;
    $('freshness').textContent = `lake freshness: ${h.lakeFreshnessS === null ? 'no lake file yet' : `${h.lakeFreshnessS} s`} · ${h.clients} page${h.clients === 1 ? '' : 's'} watching${missing}`;
    const wh = $('warehouse-freshness');
    wh.textContent =
      !h.warehouseConfigured
        ? 'warehouse: not configured'
        : h.warehouseError !== undefined
          ? `warehouse: ${h.warehouseError}`
          : h.warehouseFreshnessS === null
            ? 'warehouse: no load yet'
            : `warehouse: last load ${h.warehouseFreshnessS} s ago${h.warehouseBehindLakeS === null ? '' : ` · ${h.warehouseBehindLakeS} s behind the lake`}`;
    wh.dataset['freshnessS'] = String(h.warehouseFreshnessS ?? '');
    wh.dataset['behindLakeS'] = String(h.warehouseBehindLakeS ?? '');
  }
  $('map-stats').textContent = `${vehicles.size} vehicles · ${incidents.size} open incidents · ${stations.size} stations · ${cameras.size} cameras`;
}

// ---- charts -------------------------------------------------------------------------------------

const rateRing = new SeriesRing(CHART_POINTS, 2);
const kpiRing = new SeriesRing(CHART_POINTS, KPI_SERIES);
let kpiNames: string[] = [];
const axisStyle = { stroke: '#8a99a8', grid: { stroke: '#2a3542' }, ticks: { stroke: '#2a3542' } };
const valueAxis = { ...axisStyle, size: 56 };
const chartWidth = () => Math.max(200, $('chart-rate').clientWidth || 430);
const rateChart = new uPlot(
  {
    width: chartWidth(),
    height: 140,
    axes: [axisStyle, valueAxis],
    series: [{}, { label: 'events/s', stroke: '#58a6ff', width: 1.5 }, { label: 'vehicles', stroke: '#9fd3c7', width: 1.5 }],
  },
  rateRing.data() as uPlot.AlignedData,
  $('chart-rate'),
);
const palette = ['#f2cc60', '#ff7b72', '#a5d6ff', '#7ee787'];
let kpiChart = makeKpiChart([]);
function makeKpiChart(names: string[]): uPlot {
  return new uPlot(
    {
      width: chartWidth(),
      height: 140,
      axes: [axisStyle, valueAxis],
      series: [{}, ...Array.from({ length: KPI_SERIES }, (_, i) => ({ label: names[i] ?? '–', stroke: palette[i] as string, width: 1.5, spanGaps: true }))],
    },
    kpiRing.data() as uPlot.AlignedData,
    $('chart-kpi'),
  );
}

function sampleCharts(h: HealthView) {
  const total = Object.values(h.rate).reduce((a, b) => a + b, 0);
  rateRing.push(h.now / 1000, [total, vehicles.size]);
  rateChart.setData(rateRing.data() as uPlot.AlignedData);
  const list = tiles();
  const names = list.slice(0, KPI_SERIES).map((t) => t.kpi);
  if (names.join() !== kpiNames.join() && names.length > kpiNames.length) {
    kpiNames = names;
    kpiChart.destroy();
    kpiChart = makeKpiChart(kpiNames);
  }
  kpiRing.push(h.now / 1000, kpiNames.map((n) => list.find((t) => t.kpi === n)?.value));
  kpiChart.setData(kpiRing.data() as uPlot.AlignedData);
}

// ---- legend and stream --------------------------------------------------------------------------

function legend() {
  const rows: [string, string][] = [
    [VEHICLE_COLOURS['bus'] as string, 'bus / tram'],
    ['#9fd3c7', 'vehicle'],
    [VEHICLE_COLOURS['ambulance'] as string, 'emergency vehicle'],
    [VEHICLE_COLOURS['gps'] as string, 'GPS tracker'],
    ...AQI_BANDS.map((b, i) => [AQI_COLOURS[i] as string, `AQI: ${b}`] as [string, string]),
    [cameraColour({ lanes: 1, congestedLanes: 0, occupancy: 0 } as CameraView), 'camera: free flow'],
    [cameraColour({ lanes: 2, congestedLanes: 2, occupancy: 1 } as CameraView), 'camera: congested'],
    ['#ff2d55', 'incident (◆)'],
    ['#d1d1d6', 'weather (■)'],
  ];
  $('legend').replaceChildren(
    ...rows.map(([colour, label]) => {
      const span = document.createElement('span');
      const i = document.createElement('i');
      i.style.background = colour;
      span.append(i, label);
      return span;
    }),
  );
}

async function boot() {
  legend();
  const geometry = (await (await fetch('./city.geojson')).json()) as CityGeometry;
  const map = createMap($('map') as HTMLCanvasElement, geometry, { vehicles, stations, cameras, incidents });
  let panelsDue = false;
  const schedulePanels = () => {
    if (panelsDue) return;
    panelsDue = true;
    requestAnimationFrame(() => {
      panelsDue = false;
      renderPanels();
    });
  };
  const conn = $('conn');
  const connect = (): void => {
    const source = new EventSource('./events');
    source.addEventListener('open', () => {
      probe.opens++;
      conn.dataset['state'] = 'live';
      conn.textContent = 'live';
    });
    source.addEventListener('error', () => {
      probe.errors++;
      conn.dataset['state'] = 'reconnecting';
      conn.textContent = 'reconnecting…';
    });
    source.addEventListener('snapshot', (e) => {
      const m = JSON.parse((e as MessageEvent<string>).data) as SnapshotMessage;
      probe.messages++;
      probe.lastSeq = m.seq;
      applySnapshot(m);
      map.invalidate();
      schedulePanels();
    });
    source.addEventListener('delta', (e) => {
      const m = JSON.parse((e as MessageEvent<string>).data) as DeltaMessage;
      probe.messages++;
      if (probe.lastSeq !== undefined && m.seq !== probe.lastSeq + 1) {
        // Should never happen; if it does, the state may be stale: start over from a snapshot (a new
        // EventSource sends no Last-Event-ID).
        probe.gaps++;
        probe.lastSeq = undefined;
        source.close();
        connect();
        return;
      }
      probe.lastSeq = m.seq;
      applyDelta(m);
      if (m.health !== undefined) {
        sampleCharts(m.health);
        $('clock').textContent = new Date(m.health.now).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
      }
      map.invalidate();
      schedulePanels();
    });
  };
  connect();
}

void boot();
