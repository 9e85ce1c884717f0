// The city map on a canvas: districts and roads from the shipped GeoJSON drawn once per resize onto a
// background canvas, then the live layers on top at most once per animation frame. Vehicles are drawn
// as one path per colour, so 10,000 of them cost a handful of canvas calls.
import type { CameraView, IncidentView, StationView, VehicleRow } from '../messages.ts';

type Position = [number, number];
interface Feature {
  id: string;
  properties: { layer: string; name: string; kind?: string };
  geometry: { type: 'Polygon'; coordinates: Position[][] } | { type: 'LineString'; coordinates: Position[] } | { type: 'Point'; coordinates: Position };
}
export interface CityGeometry {
  name: string;
  bbox: [number, number, number, number];
  features: Feature[];
}

export const VEHICLE_COLOURS: Record<string, string> = {
  bus: '#f2cc60', tram: '#f2cc60', minibus: '#f2cc60',
  ambulance: '#ff6b6b', fireTruck: '#ff6b6b', police: '#6ba7ff',
  gps: '#c792ea',
};
const DEFAULT_VEHICLE = '#9fd3c7';
export const AQI_COLOURS = ['#00e400', '#ffff00', '#ff7e00', '#ff0000', '#8f3f97', '#7e0023'];
const SEVERITY_COLOURS: Record<string, string> = { critical: '#ff2d55', high: '#ff6b3d', medium: '#ffb340', low: '#ffd60a', informational: '#8a99a8' };

export interface MapLayers {
  vehicles: ReadonlyMap<string, VehicleRow>;
  stations: ReadonlyMap<string, StationView>;
  cameras: ReadonlyMap<string, CameraView>;
  incidents: ReadonlyMap<string, IncidentView>;
}

/** A weather reading worth a colour: storm, heat, frost, rain, or calm. */
export function weatherColour(s: StationView): string {
  if ((s.windSpeed ?? 0) >= 17.2) return '#ff453a';
  if ((s.temperature ?? 0) >= 30) return '#ff9f0a';
  if ((s.temperature ?? 10) <= 0) return '#64d2ff';
  if ((s.precipitation ?? 0) > 0.5) return '#0a84ff';
  return '#d1d1d6';
}

export function cameraColour(c: CameraView): string {
  if (c.lanes > 0 && c.congestedLanes === c.lanes) return '#ff453a';
  if (c.congestedLanes > 0 || c.occupancy > 0.5) return '#ff9f0a';
  return '#30d158';
}

export function createMap(canvas: HTMLCanvasElement, geometry: CityGeometry, layers: MapLayers) {
  const background = document.createElement('canvas');
  const [west, south, east, north] = geometry.bbox;
  const kx = Math.cos((((south + north) / 2) * Math.PI) / 180);
  let scale = 1;
  let ox = 0;
  let oy = 0;
  let dpr = 1;
  let dirty = true;

  const project = (lon: number, lat: number): [number, number] => [ox + (lon - west) * kx * scale, oy + (north - lat) * scale];

  const resize = () => {
    dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    canvas.width = background.width = Math.max(1, Math.round(w * dpr));
    canvas.height = background.height = Math.max(1, Math.round(h * dpr));
    const spanX = (east - west) * kx;
    const spanY = north - south;
    scale = Math.min(w / spanX, h / spanY);
    ox = (w - spanX * scale) / 2;
    oy = (h - spanY * scale) / 2;
    drawBackground();
    dirty = true;
  };

  const drawBackground = () => {
    const g = background.getContext('2d');
    if (g === null) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = '#0b1016';
    g.fillRect(0, 0, background.width, background.height);
    for (const f of geometry.features) {
      if (f.geometry.type !== 'Polygon') continue;
      g.beginPath();
      for (const ring of f.geometry.coordinates) ring.forEach(([lon, lat], i) => (i === 0 ? g.moveTo(...project(lon, lat)) : g.lineTo(...project(lon, lat))));
      g.fillStyle = 'rgba(80, 110, 140, 0.16)';
      g.strokeStyle = 'rgba(120, 150, 180, 0.45)';
      g.fill();
      g.stroke();
      const ring = f.geometry.coordinates[0] ?? [];
      const c = ring.reduce((acc, [lon, lat]) => [acc[0] + lon / ring.length, acc[1] + lat / ring.length], [0, 0]);
      g.fillStyle = 'rgba(200, 215, 230, 0.55)';
      g.font = '12px system-ui, sans-serif';
      g.textAlign = 'center';
      g.fillText(f.properties.name, ...project(c[0] as number, c[1] as number));
    }
    for (const f of geometry.features) {
      if (f.geometry.type !== 'LineString') continue;
      g.beginPath();
      f.geometry.coordinates.forEach(([lon, lat], i) => (i === 0 ? g.moveTo(...project(lon, lat)) : g.lineTo(...project(lon, lat))));
      const kind = f.properties.kind;
      g.strokeStyle = kind === 'road' ? 'rgba(190, 200, 210, 0.55)' : 'rgba(242, 204, 96, 0.3)';
      g.lineWidth = kind === 'road' ? 3 : 1.5;
      g.stroke();
    }
    g.lineWidth = 1;
  };

  const draw = () => {
    const g = canvas.getContext('2d');
    if (g === null) return;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(background, 0, 0);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    // Vehicles: one path per colour.
    const paths = new Map<string, Path2D>();
    for (const v of layers.vehicles.values()) {
      const colour = VEHICLE_COLOURS[v[5]] ?? DEFAULT_VEHICLE;
      let p = paths.get(colour);
      if (p === undefined) paths.set(colour, (p = new Path2D()));
      const [x, y] = project(v[1], v[2]);
      p.rect(x - 2, y - 2, 4, 4);
    }
    for (const [colour, p] of paths) {
      g.fillStyle = colour;
      g.fill(p);
    }
    for (const c of layers.cameras.values()) {
      const [x, y] = project(c.lon, c.lat);
      g.beginPath();
      g.moveTo(x, y - 7);
      g.lineTo(x + 6, y + 5);
      g.lineTo(x - 6, y + 5);
      g.closePath();
      g.fillStyle = cameraColour(c);
      g.fill();
      g.strokeStyle = '#0b1016';
      g.stroke();
    }
    for (const s of layers.stations.values()) {
      const [x, y] = project(s.lon, s.lat);
      g.beginPath();
      if (s.kind === 'air_quality') {
        g.arc(x, y, 7, 0, 2 * Math.PI);
        g.fillStyle = AQI_COLOURS[s.aqiBand ?? 0] ?? AQI_COLOURS[0] as string;
      } else {
        g.rect(x - 6, y - 6, 12, 12);
        g.fillStyle = weatherColour(s);
      }
      g.fill();
      g.strokeStyle = '#0b1016';
      g.stroke();
      g.fillStyle = '#e6edf3';
      g.font = '11px system-ui, sans-serif';
      g.textAlign = 'left';
      const label = s.kind === 'air_quality' ? `AQI ${s.aqi ?? '–'}` : `${s.temperature?.toFixed(1) ?? '–'}°C ${s.windSpeed?.toFixed(0) ?? '–'} m/s`;
      g.fillText(label, x + 9, y + 4);
    }
    for (const i of layers.incidents.values()) {
      const [x, y] = project(i.lon, i.lat);
      g.beginPath();
      g.moveTo(x, y - 8);
      g.lineTo(x + 8, y);
      g.lineTo(x, y + 8);
      g.lineTo(x - 8, y);
      g.closePath();
      g.fillStyle = SEVERITY_COLOURS[i.severity] ?? '#ff2d55';
      g.fill();
      g.strokeStyle = '#fff';
      g.stroke();
    }
  };

  const frame = () => {
    if (dirty) {
      dirty = false;
      draw();
    }
    requestAnimationFrame(frame);
  };
  new ResizeObserver(resize).observe(canvas);
  resize();
  requestAnimationFrame(frame);

  return {
    invalidate() {
      dirty = true;
    },
    /** Where a point is drawn, in CSS pixels of the canvas (for tests and tooltips). */
    project,
  };
}
